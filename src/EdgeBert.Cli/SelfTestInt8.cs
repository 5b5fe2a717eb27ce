using EdgeBert.Kernels;

namespace EdgeBert.Cli;

/// <summary>The INT8 GEMM on every path this CPU has (on ARM64 the sdot path): integer inputs against an exact
/// long sum, and float inputs with bias, accumulation and GELU against the scalar twin, bit for bit.</summary>
static class SelfTestInt8
{
    public static void Run(SelfTestReport report)
    {
        foreach (var path in Int8Paths.Supported)
        {
            string p = Int8Paths.Name(path);
            var random = new Random(20261204);
            report.Guard($"int8 {p} gemm", () =>
            {
                Exact(report, p, path, random, 13, 37, 771);
                using var pool = new WorkerPool(2);
                foreach (var (m, n, k, threads) in new[] { (9, 45, 67, (WorkerPool?)null), (33, 70, 130, pool) })
                    Twin(report, p, path, random, m, n, k, threads);
            });
        }
    }

    /// <summary>Values in [-127, 127] with a +-127 in every row keep scale 1, so C is the integer sum itself.</summary>
    static void Exact(SelfTestReport report, string p, Int8Path path, Random random, int m, int n, int k)
    {
        float[] a = Integers(random, m, k), weight = Integers(random, n, k);
        var c = new float[m * n];
        Int8Gemm.Multiply(m, a, k, QuantizedWeight.FromLinear(weight, n, k, path), c, n);
        int wrong = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                long sum = 0;
                for (int q = 0; q < k; q++) sum += (long)a[i * k + q] * (long)weight[j * k + q];
                if (c[i * n + j] != (float)sum) wrong++;
            }
        report.Record($"{p,-9} int8 gemm integer product m={m} n={n} k={k}", wrong == 0, $"{wrong} of {m * n} differ");
    }

    static void Twin(SelfTestReport report, string p, Int8Path path, Random random, int m, int n, int k,
        WorkerPool? pool)
    {
        float[] a = Floats(random, m * k), weight = Floats(random, n * k);
        float[] bias = Floats(random, n), c0 = Floats(random, m * n);
        var w = QuantizedWeight.FromLinear(weight, n, k, path);
        float[] c = (float[])c0.Clone(), expected = (float[])c0.Clone();
        Int8Gemm.Multiply(m, a, k, w, c, n, accumulate: true, bias, GemmEpilogue.Gelu, pool);
        Int8GemmReference.Multiply(m, a, k, w, expected, n, accumulate: true, bias, GemmEpilogue.Gelu);
        int wrong = c.Zip(expected).Count(pair =>
            BitConverter.SingleToInt32Bits(pair.First) != BitConverter.SingleToInt32Bits(pair.Second));
        report.Record(
            $"{p,-9} int8 gemm vs scalar twin m={m} n={n} k={k} bias accumulate gelu threads={pool?.Threads ?? 1}",
            wrong == 0, $"{wrong} of {m * n} differ in bits");
    }

    static float[] Integers(Random random, int rows, int cols)
    {
        var x = new float[rows * cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) x[i * cols + j] = random.Next(-127, 128);
            x[i * cols + random.Next(cols)] = random.Next(2) == 0 ? 127 : -127;
        }
        return x;
    }

    static float[] Floats(Random random, int length)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
