using System.Globalization;
using EdgeBert.Kernels;

namespace EdgeBert.Cli;

/// <summary>Every kernel on every ISA path against its scalar reference twin (GEMM and GELU against
/// double precision, tanh against Math.Tanh), with the tolerances of the unit tests. Shapes are odd on
/// purpose: they hit vector tails and GEMM edge tiles on every width.</summary>
static class SelfTestKernels
{
    public static void Run(SelfTestReport report)
    {
        foreach (var isa in IsaSelector.Supported)
        {
            string p = IsaSelector.Name(isa);
            var random = new Random(20240611);
            report.Guard($"{p} gemm", () =>
            {
                foreach (var (transA, transB) in new[] { (false, false), (false, true), (true, false), (true, true) })
                    Gemm(report, isa, p, random, 37, 45, 67, transA, transB, bias: transB, accumulate: transA,
                        GemmEpilogue.None);
                Gemm(report, isa, p, random, 9, 50, 769, false, true, bias: true, accumulate: false, GemmEpilogue.Gelu);
                Packed(report, isa, p, random, 33, 70, 129, pool: null);
                using var pool = new WorkerPool(2);
                Packed(report, isa, p, random, 64, 96, 80, pool);
            });
            report.Guard($"{p} softmax", () => SoftmaxCheck(report, isa, p, random));
            report.Guard($"{p} layernorm", () => LayerNormCheck(report, isa, p, random));
            report.Guard($"{p} gelu", () => GeluCheck(report, isa, p, random));
            report.Guard($"{p} tanh", () => TanhCheck(report, isa, p, random));
            report.Guard($"{p} attention", () => AttentionCheck(report, isa, p, random));
            report.Guard($"{p} elementwise", () => ElementwiseCheck(report, isa, p, random));
        }
        SelfTestInt8.Run(report);
    }

    /// <summary>fp32 against double: the error grows as sqrt(K) past K = 768 (DESIGN.md 7).</summary>
    static double GemmTolerance(int k) => 1e-6 * Math.Max(1, Math.Sqrt(k / 768.0));

    static void Gemm(SelfTestReport report, Isa isa, string p, Random random, int m, int n, int k, bool transA,
        bool transB, bool bias, bool accumulate, GemmEpilogue epilogue)
    {
        int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 3, ldc = n + 2;
        var a = Values(random, (transA ? k : m) * lda, -1, 1);
        var b = Values(random, (transB ? n : k) * ldb, -1, 1);
        var c = Values(random, m * ldc, -1, 1);
        var biasValues = bias ? Values(random, n, -1, 1) : [];
        var expected = GemmReference.Multiply(m, n, k, a, lda, transA, b, ldb, transB, (ReadOnlySpan<float>)c, ldc,
            accumulate, biasValues, epilogue);
        EdgeBert.Kernels.Gemm.Multiply(m, n, k, a, lda, transA, b, ldb, transB, c, ldc, accumulate, biasValues,
            epilogue, isa: isa);
        string op = $"{(transA ? 't' : 'n')}{(transB ? 't' : 'n')}";
        // The GELU epilogue adds its erf approximation's own 1e-6 (the unit tests' allowance).
        double tolerance = GemmTolerance(k) + (epilogue == GemmEpilogue.Gelu ? 2e-6 : 0);
        string options = (bias ? " bias" : "") + (accumulate ? " accumulate" : "")
            + (epilogue == GemmEpilogue.Gelu ? " gelu" : "");
        report.Within(Name(p, $"gemm {op} m={m} n={n} k={k}{options}"),
            ErrorNorm.Relative(c, ldc, expected, m, n), tolerance);
    }

    static void Packed(SelfTestReport report, Isa isa, string p, Random random, int m, int n, int k, WorkerPool? pool)
    {
        var a = Values(random, m * k, -1, 1);
        var weight = Values(random, n * k, -1, 1);
        var bias = Values(random, n, -1, 1);
        var c = new float[m * n];
        var expected = GemmReference.Multiply(m, n, k, a, k, false, weight, k, true, (ReadOnlySpan<float>)c, n,
            false, bias);
        EdgeBert.Kernels.Gemm.Multiply(m, a, k, PackedWeight.FromLinear(weight, n, k, isa), c, n, bias: bias,
            pool: pool);
        report.Within(Name(p, $"gemm packed m={m} n={n} k={k} bias threads={pool?.Threads ?? 1}"),
            ErrorNorm.Relative(c, n, expected, m, n), GemmTolerance(k));
    }

    static void SoftmaxCheck(SelfTestReport report, Isa isa, string p, Random random)
    {
        const int rows = 5, cols = 77;
        var x = Values(random, rows * cols, -12, 12);
        var mask = Values(random, cols, -3, 0);
        mask[3] = float.NegativeInfinity;
        mask[40] = -10000f;
        var y = (float[])x.Clone();
        Softmax.Rows(y, rows, cols, mask, isa);
        double worst = 0;
        for (int r = 0; r < rows; r++)
        {
            var expected = x.AsSpan(r * cols, cols).ToArray();
            SoftmaxReference.Row(expected, mask);
            worst = Math.Max(worst, ErrorNorm.Relative(y.AsSpan(r * cols, cols), expected));
        }
        report.Within(Name(p, $"softmax {rows}x{cols} masked"), worst, 2e-6);
    }

    static void LayerNormCheck(SelfTestReport report, Isa isa, string p, Random random)
    {
        foreach (int cols in new[] { 33, 768 })
        {
            const int rows = 3;
            var x = Values(random, rows * cols, -3, 5);
            var gamma = Values(random, cols, 0.5, 1.5);
            var beta = Values(random, cols, -1, 1);
            var y = new float[rows * cols];
            LayerNorm.Forward(x, y, rows, cols, gamma, beta, 1e-12f, isa: isa);
            double worst = 0;
            var expected = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                LayerNormReference.Row(x.AsSpan(r * cols, cols), expected, gamma, beta, 1e-12f);
                worst = Math.Max(worst, ErrorNorm.Relative(y.AsSpan(r * cols, cols), expected));
            }
            report.Within(Name(p, $"layernorm {rows}x{cols}"), worst, 1e-6);
        }
    }

    static void GeluCheck(SelfTestReport report, Isa isa, string p, Random random)
    {
        var x = Values(random, 1001, -9, 9);
        var y = new float[x.Length];
        Activations.Gelu(x, y, isa);
        double worst = 0;
        for (int i = 0; i < x.Length; i++)
            worst = Math.Max(worst, Math.Abs(y[i] - GemmReference.Gelu(x[i])) / (1 + Math.Abs(x[i])));
        report.Within(Name(p, $"gelu n={x.Length} (error / (1 + |x|))"), worst, 1e-6);
    }

    static void TanhCheck(SelfTestReport report, Isa isa, string p, Random random)
    {
        var x = Values(random, 1001, -12, 12);
        x[0] = 1e-5f; // tanh(x) ~ x must stay accurate relatively
        var y = new float[x.Length];
        Activations.Tanh(x, y, isa);
        double worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double expected = Math.Tanh(x[i]);
            worst = Math.Max(worst, Math.Abs(y[i] - expected) / Math.Abs(expected));
        }
        report.Within(Name(p, $"tanh n={x.Length} (relative error)"), worst, 3e-7);
    }

    static void AttentionCheck(SelfTestReport report, Isa isa, string p, Random random)
    {
        const int n = 19, heads = 2, headDim = 64, hidden = heads * headDim;
        const int ld = 3 * hidden + 3, ldContext = hidden + 5;
        var qkv = Values(random, n * ld, -1.5, 1.5);
        var q = qkv.AsSpan(0);
        var k = qkv.AsSpan(hidden);
        var v = qkv.AsSpan(2 * hidden);
        var mask = new float[n];
        for (int j = 0; j < n; j++) mask[j] = (j % 5) switch { 1 => float.NegativeInfinity, 3 => -10000f, _ => 0f };

        var context = new float[n * ldContext];
        var probs = new float[heads * n * n];
        Attention.Forward(q, k, v, ld, n, heads, headDim, context, ldContext, probs, mask, isa);

        var expectedContext = new float[n * ldContext];
        var expectedProbs = new float[heads * n * n];
        for (int h = 0; h < heads; h++)
            AttentionReference.ForwardHead(q, k, v, ld, n, headDim, h, expectedContext, ldContext,
                expectedProbs.AsSpan(h * n * n, n * n), mask);
        report.Within(Name(p, $"attention probs n={n} heads={heads} head_dim={headDim} masked"),
            ErrorNorm.Relative(probs, expectedProbs), 2e-6);
        report.Within(Name(p, $"attention context n={n} heads={heads} head_dim={headDim} masked"),
            ErrorNorm.Relative(context, expectedContext), 2e-6);
    }

    static void ElementwiseCheck(SelfTestReport report, Isa isa, string p, Random random)
    {
        var a = Values(random, 203, -2, 2);
        var b = Values(random, 203, -2, 2);
        var sum = new float[a.Length];
        var expectedSum = new float[a.Length];
        Elementwise.Add(a, b, sum, isa);
        ElementwiseReference.Add(a, b, expectedSum);
        var axpy = (float[])b.Clone();
        var expectedAxpy = (float[])b.Clone();
        Elementwise.Axpy(0.37f, a, axpy, isa);
        ElementwiseReference.Axpy(0.37f, a, expectedAxpy);
        double dot = Elementwise.Dot(a, b, isa), expectedDot = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            expectedDot += (double)a[i] * b[i];
            scale += Math.Abs((double)a[i] * b[i]);
        }
        // Add and axpy are one rounding per element on every path; dot is compared to the double sum,
        // relative to the sum of |a_i b_i| since the dot itself may cancel.
        report.Within(Name(p, $"add, axpy n={a.Length}"),
            Math.Max(ErrorNorm.Relative(sum, expectedSum), ErrorNorm.Relative(axpy, expectedAxpy)), 1e-6);
        report.Within(Name(p, $"dot n={a.Length}"), Math.Abs(dot - expectedDot) / scale, 1e-6);
    }

    static string Name(string isa, string what) => $"{isa,-9} {what}";

    static float[] Values(Random random, int length, double low, double high)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = (float)(low + (high - low) * random.NextDouble());
        return x;
    }
}
