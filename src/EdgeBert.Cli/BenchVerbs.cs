using System.Diagnostics;
using System.Globalization;
using EdgeBert.Kernels;

namespace EdgeBert.Cli;

/// <summary>`edgebert bench KIND`: quick side-by-side speed figures (BenchmarkDotNet lives in bench/).</summary>
static class BenchVerbs
{
    public static void Register(List<CliApp.Verb> verbs)
    {
        verbs.Add(new CliApp.Verb("bench",
            "time a kernel, the encoder, embeddings or a training step (bench gemm | encoder | embed | train)",
            """
            edgebert bench gemm --m M --k K --n N --threads T [--isa avx512|avx2|vector128|scalar] [--json]
              Times C[M,N] = A[M,K] * W^T with W [N,K] packed once as a PackedWeight (the forward-pass path),
              best of repeated runs over at least one second; prints ms and GFLOP/s (2*M*N*K / time),
              or with --json one object {"m","k","n","threads","isa","ms","gflops"}.
            """ + "\n" + EncoderBench.Usage + "\n" + EmbedBench.Usage + "\n" + TrainVerbs.BenchTrainUsage, Run));
    }

    static int Run(ParsedArgs a, TextWriter o)
    {
        if (a.Positionals.Count == 0) throw new UsageException("bench needs a kind: gemm, encoder, embed or train");
        return a.Positionals[0] switch
        {
            "gemm" => RunGemm(a, o),
            "encoder" => EncoderBench.Run(a, o),
            "embed" => EmbedBench.Run(a, o),
            "train" => TrainVerbs.BenchTrain(a, o),
            _ => throw new UsageException($"unknown bench kind '{a.Positionals[0]}'"),
        };
    }

    static int RunGemm(ParsedArgs a, TextWriter o)
    {
        int m = a.RequiredInt("m", 1, 1 << 16), k = a.RequiredInt("k", 1, 1 << 16), n = a.RequiredInt("n", 1, 1 << 16);
        int threads = a.Int("threads", 1, 1, 256);
        var isaText = a.String("isa");
        bool json = a.Flag("json");
        a.RejectUnknown(maxPositionals: 1);
        if ((long)m * k > int.MaxValue || (long)k * n > int.MaxValue || (long)m * n > int.MaxValue)
            throw new UsageException("matrices larger than 2^31 values are not supported");
        var isa = IsaSelector.Default;
        if (isaText is not null)
        {
            if (!IsaSelector.TryParse(isaText, out isa))
                throw new UsageException($"--isa must be one of avx512, avx2, vector128, scalar, got '{isaText}'");
            string best = IsaSelector.Name(IsaSelector.Best);
            if (!IsaSelector.IsSupported(isa))
                throw new UsageException($"--isa {IsaSelector.Name(isa)} is not supported by this CPU (best: {best})");
        }
        var (ms, gflops, runs) = TimeGemm(m, k, n, threads, isa);
        var inv = CultureInfo.InvariantCulture;
        if (json)
            o.WriteLine(string.Create(inv, $$"""{"m":{{m}},"k":{{k}},"n":{{n}},"threads":{{threads}}"""
                + $$""","isa":"{{IsaSelector.Name(isa)}}","ms":"""
                + $$"""{{Math.Round(ms, 6)}},"gflops":{{Math.Round(gflops, 1)}}}"""));
        else
            o.WriteLine(string.Create(inv,
                $"gemm m={m} k={k} n={n} threads={threads} isa={IsaSelector.Name(isa)}: {ms:F4} ms, "
                + $"{gflops:F1} GFLOP/s (best of {runs} runs, packed weight)"));
        return 0;
    }

    /// <summary>Best time of C = X * W^T through the forward-pass path, over at least one second of runs.</summary>
    static (double Ms, double Gflops, int Runs) TimeGemm(int m, int k, int n, int threads, Isa isa)
    {
        var rng = new Random(1);
        var x = new float[m * k];
        var weight = new float[n * k];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < weight.Length; i++) weight[i] = (float)(rng.NextDouble() - 0.5);
        var packed = PackedWeight.FromLinear(weight, n, k, isa);
        var y = new float[m * n];
        using var pool = new WorkerPool(threads);

        for (int i = 0; i < 3; i++) Gemm.Multiply(m, x, k, packed, y, n, pool: pool);
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        int runs = 0;
        while (total.Elapsed.TotalSeconds < 1.0 || runs < 5)
        {
            long start = Stopwatch.GetTimestamp();
            Gemm.Multiply(m, x, k, packed, y, n, pool: pool);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            runs++;
        }
        return (best * 1e3, 2.0 * m * n * k / best / 1e9, runs);
    }
}
