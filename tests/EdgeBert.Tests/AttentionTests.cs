using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class AttentionTests
{
    /// <summary>q, k, v as slices of one fused row-major [n, 3 * hidden + pad] buffer, as the engine keeps
    /// them.</summary>
    sealed record Layout(int N, int Heads, int HeadDim)
    {
        public int Hidden => Heads * HeadDim;
        public int Ld => 3 * Hidden + 3;
        public int LdContext => Hidden + 5;
        public int Length => N * Ld;
    }

    /// <summary>Naive attention in double; a query whose keys are all -inf gets zero probabilities.</summary>
    static (double[] Context, double[] Probs) Reference(Layout s, ReadOnlySpan<double> qkv, ReadOnlySpan<float> mask)
    {
        var context = new double[s.N * s.LdContext];
        var probs = new double[s.Heads * s.N * s.N];
        double scale = 1 / Math.Sqrt(s.HeadDim);
        var scores = new double[s.N];
        for (int h = 0; h < s.Heads; h++)
            for (int i = 0; i < s.N; i++)
            {
                for (int j = 0; j < s.N; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < s.HeadDim; d++)
                        dot += qkv[i * s.Ld + h * s.HeadDim + d] * qkv[j * s.Ld + s.Hidden + h * s.HeadDim + d];
                    scores[j] = dot * scale + (mask.IsEmpty ? 0 : mask[j]);
                }
                double max = scores.Max();
                if (double.IsNegativeInfinity(max)) continue;
                double sum = 0;
                for (int j = 0; j < s.N; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                for (int j = 0; j < s.N; j++)
                {
                    double p = scores[j] / sum;
                    probs[(h * s.N + i) * s.N + j] = p;
                    for (int d = 0; d < s.HeadDim; d++)
                    {
                        double value = qkv[j * s.Ld + 2 * s.Hidden + h * s.HeadDim + d];
                        context[i * s.LdContext + h * s.HeadDim + d] += p * value;
                    }
                }
            }
        return (context, probs);
    }

    static void RunForward(Isa isa, Layout s, float[] qkv, float[] mask, float[] context, float[] probs) =>
        Attention.Forward(qkv, qkv.AsSpan(s.Hidden), qkv.AsSpan(2 * s.Hidden), s.Ld, s.N, s.Heads, s.HeadDim,
            context, s.LdContext, probs, mask, isa);

    static float[] Mask(Random random, int n, bool all)
    {
        var mask = new float[n];
        for (int j = 0; j < n; j++)
            mask[j] = all
                ? float.NegativeInfinity
                : (j % 5) switch { 1 => float.NegativeInfinity, 3 => -10000f, _ => 0f };
        if (!all) mask[random.Next(n)] = 0f; // at least one visible key
        return mask;
    }

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 64 }, { 2, 2, 64 }, { 12, 1, 64 }, { 5, 3, 8 }, { 17, 2, 64 }, { 33, 2, 13 }, { 40, 1, 20 },
        { 128, 2, 64 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardMatchesNaiveDoubleReference(int n, int heads, int headDim)
    {
        var s = new Layout(n, heads, headDim);
        var random = new Random(n * 100 + headDim);
        var qkv = KernelCheck.Random(random, s.Length, -1.5, 1.5);
        foreach (var mask in new[] { Array.Empty<float>(), Mask(random, n, all: false), Mask(random, n, all: true) })
        {
            var (expectedContext, expectedProbs) = Reference(s, KernelCheck.ToDouble(qkv), mask);
            KernelCheck.ForEachIsa(isa =>
            {
                var context = Enumerable.Repeat(float.NaN, s.N * s.LdContext).ToArray();
                var probs = Enumerable.Repeat(float.NaN, heads * n * n).ToArray();
                RunForward(isa, s, qkv, mask, context, probs);
                double probsError = KernelCheck.RelativeErrorNorm(probs, expectedProbs);
                Assert.True(probsError <= 1e-6, $"{isa} mask={mask.Length}: probs error {probsError:E2}");
                for (int i = 0; i < n; i++)
                {
                    var row = context.AsSpan(i * s.LdContext, s.Hidden);
                    var expectedRow = expectedContext.AsSpan(i * s.LdContext, s.Hidden);
                    double error = KernelCheck.RelativeErrorNorm(row, expectedRow);
                    Assert.True(error <= 1e-6, $"{isa} mask={mask.Length} row {i}: context error {error:E2}");
                    Assert.All(context.AsSpan(i * s.LdContext + s.Hidden, s.LdContext - s.Hidden).ToArray(), v =>
                        Assert.True(float.IsNaN(v)));
                }
            });
        }
    }

    [Theory]
    [InlineData(3, 1, 5)]
    [InlineData(6, 2, 8)]
    [InlineData(9, 2, 64)]
    [InlineData(12, 1, 64)]
    public void BackwardMatchesCentralDifferences(int n, int heads, int headDim)
    {
        var s = new Layout(n, heads, headDim);
        var random = new Random(n + 7 * headDim);
        var qkv = KernelCheck.Random(random, s.Length, -1, 1);
        var mask = new float[n];
        mask[n - 1] = float.NegativeInfinity;
        mask[0] = -0.7f;
        var dContext = KernelCheck.Random(random, n * s.LdContext, -1, 1);

        // Loss = dContext . context(qkv) in double; its gradient by central differences.
        var qkvDouble = KernelCheck.ToDouble(qkv);
        double Loss()
        {
            var context = Reference(s, qkvDouble, mask).Context;
            double loss = 0;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < s.Hidden; c++) loss += dContext[i * s.LdContext + c] * context[i * s.LdContext + c];
            return loss;
        }
        const double h = 1e-6;
        var expected = new double[s.Length];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3 * s.Hidden; c++)
            {
                int at = i * s.Ld + c;
                double saved = qkvDouble[at];
                qkvDouble[at] = saved + h; double up = Loss();
                qkvDouble[at] = saved - h; double down = Loss();
                qkvDouble[at] = saved;
                expected[at] = (up - down) / (2 * h);
            }

        KernelCheck.ForEachIsa(isa =>
        {
            var context = new float[n * s.LdContext];
            var probs = new float[heads * n * n];
            RunForward(isa, s, qkv, mask, context, probs);
            const float padding = 12345f;
            var gradient = Enumerable.Repeat(padding, s.Length).ToArray();
            Attention.Backward(qkv, qkv.AsSpan(s.Hidden), qkv.AsSpan(2 * s.Hidden), s.Ld, n, heads, headDim, probs,
                dContext, s.LdContext, gradient, gradient.AsSpan(s.Hidden), gradient.AsSpan(2 * s.Hidden), isa);
            var written = new List<float>();
            var reference = new List<double>();
            for (int i = 0; i < n; i++)
            {
                for (int c = 0; c < 3 * s.Hidden; c++)
                {
                    written.Add(gradient[i * s.Ld + c]);
                    reference.Add(expected[i * s.Ld + c]);
                }
                for (int c = 3 * s.Hidden; c < s.Ld; c++) Assert.Equal(padding, gradient[i * s.Ld + c]);
            }
            double error = KernelCheck.RelativeErrorNorm(written.ToArray(), reference.ToArray());
            Assert.True(error <= 1e-5, $"{isa} n={n} heads={heads} headDim={headDim}: gradient error {error:E2}");
        });
    }
}
