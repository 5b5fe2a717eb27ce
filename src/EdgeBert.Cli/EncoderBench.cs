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
        edgebert bench encoder (--model DIR | --shape base|mini|tiny) --seq S --batch B --threads T[,T2,..]
                               [--precision fp32|int8[,..]] [--no-gates] [--seconds X] [--json]
          Times one forward pass of B random sequences of S tokens (best of repeated runs over at least
          --seconds per configuration, default 2); prints ms per batch, GFLOP/s (2 x the exact multiply-adds)
          and tokens/s, or with --json {"ms","gflops","tokens_per_s",...} (one line per configuration).
          Several thread counts (--threads 1,2) or precisions (--precision fp32,int8; default: the model's
          own, fp32 for a --shape) make one configuration each; the runs alternate between them, so host
          noise hits each alike, and each line gives its speed-up over the first configuration.
        """;

    sealed record Configuration(Precision Precision, int Threads, BertEngine Engine, WorkerPool Pool)
    {
        public double Best { get; set; } = double.MaxValue;
        public string Name => $"{Precision.ToString().ToLowerInvariant()} {Threads} thread(s)";
    }

    public static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelDir = a.String("model"), shape = a.String("shape"), precisionText = a.String("precision");
        int seq = a.RequiredInt("seq", 1, 1 << 16), batchSize = a.RequiredInt("batch", 1, 1 << 16);
        int[] threadCounts = ThreadCounts(a.String("threads") ?? "1");
        double seconds = a.Double("seconds", 2, 0, 3600);
        bool json = a.Flag("json"), noGates = a.Flag("no-gates");
        a.RejectUnknown(maxPositionals: 1);
        if ((modelDir is null) == (shape is null))
            throw new UsageException("give exactly one of --model DIR or --shape base|mini|tiny");

        BertCheckpoint checkpoint;
        if (modelDir is not null) checkpoint = BertCheckpoint.Load(modelDir);
        else
        {
            if (shape is not ("base" or "mini" or "tiny"))
                throw new UsageException($"--shape must be base, mini or tiny, got '{shape}'");
            var config = BertConfig.ForShape(shape);
            checkpoint = new BertCheckpoint(config, WeightInit.Random(config, seed: 1));
        }
        var precisions = precisionText is null ? [checkpoint.Config.Precision]
            : PrecisionOption.ParseList(precisionText);
        var engines = precisions.Select(p => BertEngine.Load(checkpoint, new EngineOptions { Precision = p }))
            .ToArray();
        var engine = engines[0];
        if (seq > engine.Config.MaxPositionEmbeddings)
            throw new UsageException($"--seq {seq} is longer than the model's max_position_embeddings "
                + $"{engine.Config.MaxPositionEmbeddings}");

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
            var runs = engines.SelectMany(e =>
                threadCounts.Select((t, i) => new Configuration(e.Precision, t, e, pools[i])))
                .ToArray();
            var workspace = new InferenceWorkspace();
            var options = new RunOptions(UseGates: !noGates);
            long multiplyAdds = engine.Run(batch, workspace, options, pools[0]).Sum(r => r.Flops);
            foreach (var run in runs) run.Engine.Run(batch, workspace, options, run.Pool); // warm every path up
            int rounds = 0;
            var total = Stopwatch.StartNew();
            while (total.Elapsed.TotalSeconds < seconds * runs.Length || rounds < 3)
            {
                foreach (var run in runs)
                {
                    long start = Stopwatch.GetTimestamp();
                    run.Engine.Run(batch, workspace, options, run.Pool);
                    run.Best = Math.Min(run.Best, Stopwatch.GetElapsedTime(start).TotalSeconds);
                }
                rounds++;
            }
            string isa = IsaSelector.Name(engine.Isa);
            string model = modelDir ?? shape!;
            var inv = CultureInfo.InvariantCulture;
            foreach (var run in runs)
            {
                double ms = run.Best * 1e3, gflops = 2.0 * multiplyAdds / run.Best / 1e9;
                double tokensPerSecond = (double)seq * batchSize / run.Best, speedup = runs[0].Best / run.Best;
                string precision = run.Precision.ToString().ToLowerInvariant();
                string int8 = run.Engine.Int8Path is { } path ? Int8Paths.Name(path) : "none";
                bool gated = run.Engine.HasGates && !noGates;
                if (json)
                    o.WriteLine(string.Create(inv,
                        $$"""{"model":"{{JsonText(model)}}","seq":{{seq}},"batch":{{batchSize}},"threads":"""
                        + $$"""{{run.Threads}},"precision":"{{precision}}","isa":"{{isa}}","""
                        + $"\"int8_path\":\"{int8}\",\"gated\":{(gated ? "true" : "false")},\"ms\":{Math.Round(ms, 3)}"
                        + $$""","gflops":{{Math.Round(gflops, 1)}},"tokens_per_s":{{Math.Round(tokensPerSecond, 1)}}"""
                        + $$""","speedup":{{Math.Round(speedup, 3)}}}"""));
                else
                {
                    string versus = run == runs[0] ? "" : string.Create(inv, $", {speedup:F2}x of {runs[0].Name}");
                    string kernels = run.Engine.Int8Path is null ? $"isa={isa}" : $"int8={int8}";
                    o.WriteLine(string.Create(inv,
                        $"encoder {model} seq={seq} batch={batchSize} {run.Name} {kernels}: {ms:F2} ms, "
                        + $"{gflops:F1} GFLOP/s, {tokensPerSecond:F0} tokens/s (best of {rounds} runs){versus}"));
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
                throw new UsageException("--threads wants thread counts from 1 to 256 separated by "
                    + $"commas, got '{text}'");
            counts.Add(t);
        }
        return [.. counts];
    }

    static string JsonText(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"");
}
