using System.Diagnostics;
using System.Globalization;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert bench encoder`: the whole forward pass on random ids, with random weights of a
/// named shape or a given model (gated models run gated unless --no-gates).</summary>
static class EncoderBench
{
    public const string Usage = """
        edgebert bench encoder (--model DIR | --shape base|mini|tiny) --seq S --batch B --threads T [--no-gates] [--seconds X] [--json]
          Times one forward pass of B random sequences of S tokens (best of repeated runs over at least
          --seconds, default 2); prints ms per batch, GFLOP/s (2 x the exact multiply-adds) and tokens/s,
          or with --json {"ms","gflops","tokens_per_s",...}.
        """;

    public static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelDir = a.String("model"), shape = a.String("shape");
        int seq = a.RequiredInt("seq", 1, 1 << 16), batchSize = a.RequiredInt("batch", 1, 1 << 16);
        int threads = a.Int("threads", 1, 1, 256);
        double seconds = a.Double("seconds", 2, 0, 3600);
        bool json = a.Flag("json"), noGates = a.Flag("no-gates");
        a.RejectUnknown(maxPositionals: 1);
        if ((modelDir is null) == (shape is null)) throw new UsageException("give exactly one of --model DIR or --shape base|mini|tiny");

        BertEngine engine;
        if (modelDir is not null) engine = BertEngine.Load(BertCheckpoint.Load(modelDir));
        else
        {
            if (shape is not ("base" or "mini" or "tiny")) throw new UsageException($"--shape must be base, mini or tiny, got '{shape}'");
            var config = BertConfig.ForShape(shape);
            engine = new BertEngine(config, WeightInit.Random(config, seed: 1), releaseWeights: true);
        }
        if (seq > engine.Config.MaxPositionEmbeddings)
            throw new UsageException($"--seq {seq} is longer than the model's max_position_embeddings {engine.Config.MaxPositionEmbeddings}");

        var rng = new Random(2);
        var batch = new SequenceInput[batchSize];
        for (int s = 0; s < batchSize; s++)
        {
            var ids = new int[seq];
            for (int i = 0; i < seq; i++) ids[i] = rng.Next(engine.Config.VocabSize);
            batch[s] = new SequenceInput(ids);
        }
        using var pool = new WorkerPool(threads);
        var workspace = new InferenceWorkspace();
        var options = new RunOptions(UseGates: !noGates);
        var results = engine.Run(batch, workspace, options, pool);
        long multiplyAdds = results.Sum(r => r.Flops);

        double best = double.MaxValue;
        int runs = 0;
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < seconds || runs < 3)
        {
            long start = Stopwatch.GetTimestamp();
            engine.Run(batch, workspace, options, pool);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            runs++;
        }
        double ms = best * 1e3, gflops = 2.0 * multiplyAdds / best / 1e9, tokensPerSecond = (double)seq * batchSize / best;
        string isa = IsaSelector.Name(IsaSelector.Active);
        string model = modelDir ?? shape!;
        var inv = CultureInfo.InvariantCulture;
        if (json)
            o.WriteLine(string.Create(inv, $$"""{"model":"{{JsonText(model)}}","seq":{{seq}},"batch":{{batchSize}},"threads":{{threads}},"isa":"{{isa}}","gated":{{(engine.HasGates && !noGates ? "true" : "false")}},"ms":{{Math.Round(ms, 3)}},"gflops":{{Math.Round(gflops, 1)}},"tokens_per_s":{{Math.Round(tokensPerSecond, 1)}}}"""));
        else
            o.WriteLine(string.Create(inv, $"encoder {model} seq={seq} batch={batchSize} threads={threads} isa={isa}: {ms:F2} ms, {gflops:F1} GFLOP/s, {tokensPerSecond:F0} tokens/s (best of {runs} runs)"));
        return 0;
    }

    static string JsonText(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"");
}
