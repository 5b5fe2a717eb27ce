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
        edgebert bench encoder (--model DIR | --shape base|mini|tiny) --seq S --batch B --threads T[,T2,..] [--no-gates] [--seconds X] [--json]
          Times one forward pass of B random sequences of S tokens (best of repeated runs over at least
          --seconds per thread count, default 2); prints ms per batch, GFLOP/s (2 x the exact multiply-adds)
          and tokens/s, or with --json {"ms","gflops","tokens_per_s",...} (one line per thread count).
          With several thread counts (--threads 1,2) the runs alternate between them, so host noise hits
          each alike, and each line gives its speed-up over the first count.
        """;

    public static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelDir = a.String("model"), shape = a.String("shape");
        int seq = a.RequiredInt("seq", 1, 1 << 16), batchSize = a.RequiredInt("batch", 1, 1 << 16);
        int[] threadCounts = ThreadCounts(a.String("threads") ?? "1");
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
        var pools = threadCounts.Select(t => new WorkerPool(t)).ToArray();
        try
        {
            var workspace = new InferenceWorkspace();
            var options = new RunOptions(UseGates: !noGates);
            var results = engine.Run(batch, workspace, options, pools[0]);
            long multiplyAdds = results.Sum(r => r.Flops);

            var best = new double[pools.Length];
            Array.Fill(best, double.MaxValue);
            int rounds = 0;
            var total = Stopwatch.StartNew();
            foreach (var pool in pools.Skip(1)) engine.Run(batch, workspace, options, pool); // warm every pool up
            while (total.Elapsed.TotalSeconds < seconds * pools.Length || rounds < 3)
            {
                for (int p = 0; p < pools.Length; p++)
                {
                    long start = Stopwatch.GetTimestamp();
                    engine.Run(batch, workspace, options, pools[p]);
                    best[p] = Math.Min(best[p], Stopwatch.GetElapsedTime(start).TotalSeconds);
                }
                rounds++;
            }
            string isa = IsaSelector.Name(engine.Isa);
            string model = modelDir ?? shape!;
            var inv = CultureInfo.InvariantCulture;
            for (int p = 0; p < pools.Length; p++)
            {
                double ms = best[p] * 1e3, gflops = 2.0 * multiplyAdds / best[p] / 1e9, tokensPerSecond = (double)seq * batchSize / best[p];
                double speedup = best[0] / best[p];
                if (json)
                    o.WriteLine(string.Create(inv, $$"""{"model":"{{JsonText(model)}}","seq":{{seq}},"batch":{{batchSize}},"threads":{{threadCounts[p]}},"isa":"{{isa}}","gated":{{(engine.HasGates && !noGates ? "true" : "false")}},"ms":{{Math.Round(ms, 3)}},"gflops":{{Math.Round(gflops, 1)}},"tokens_per_s":{{Math.Round(tokensPerSecond, 1)}},"speedup":{{Math.Round(speedup, 3)}}}"""));
                else
                {
                    string versus = p == 0 ? "" : string.Create(inv, $", {speedup:F2}x of {threadCounts[0]} thread(s)");
                    o.WriteLine(string.Create(inv, $"encoder {model} seq={seq} batch={batchSize} threads={threadCounts[p]} isa={isa}: {ms:F2} ms, {gflops:F1} GFLOP/s, {tokensPerSecond:F0} tokens/s (best of {rounds} runs){versus}"));
                }
            }
            return 0;
        }
        finally
        {
            foreach (var pool in pools) pool.Dispose();
        }
    }

    static int[] ThreadCounts(string text)
    {
        var counts = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int t) || t < 1 || t > 256)
                throw new UsageException($"--threads wants thread counts from 1 to 256 separated by commas, got '{text}'");
            counts.Add(t);
        }
        return [.. counts];
    }

    static string JsonText(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"");
}
