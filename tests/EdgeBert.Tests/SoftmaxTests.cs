using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class SoftmaxTests
{
    /// <summary>Softmax in double; a row with no finite maximum (all -inf) is all zeros, as documented.</summary>
    static double[] Reference(ReadOnlySpan<float> row, ReadOnlySpan<float> mask)
    {
        var s = new double[row.Length];
        for (int j = 0; j < row.Length; j++) s[j] = (double)row[j] + (mask.IsEmpty ? 0 : mask[j]);
        double max = s.Length == 0 ? double.NegativeInfinity : s.Max();
        if (double.IsNegativeInfinity(max)) return new double[row.Length];
        double sum = 0;
        for (int j = 0; j < s.Length; j++) sum += s[j] = Math.Exp(s[j] - max);
        for (int j = 0; j < s.Length; j++) s[j] /= sum;
        return s;
    }

    [Fact]
    public void RowsMatchDoubleReferenceForEveryLength()
    {
        var random = new Random(21);
        KernelCheck.ForEachIsa(isa =>
        {
            for (int cols = 1; cols <= 256; cols++)
            {
                const int rows = 3;
                var x = KernelCheck.Random(random, rows * cols, -12, 12);
                var mask = KernelCheck.Random(random, cols, -3, 0);
                mask[random.Next(cols)] = float.NegativeInfinity;
                if (cols > 1) mask[random.Next(cols)] = -10000f;
                foreach (var useMask in new[] { false, true })
                {
                    var y = (float[])x.Clone();
                    Softmax.Rows(y, rows, cols, useMask ? mask : default, isa);
                    for (int r = 0; r < rows; r++)
                    {
                        var expected = Reference(x.AsSpan(r * cols, cols), useMask ? mask : default);
                        double error = KernelCheck.RelativeErrorNorm(y.AsSpan(r * cols, cols), expected);
                        Assert.True(error <= 1e-6, $"{isa} cols={cols} mask={useMask}: relative error {error:E2}");
                    }
                }
            }
        });
    }

    [Fact]
    public void RowWithValidLengthZeroesTheRest()
    {
        var random = new Random(22);
        KernelCheck.ForEachIsa(isa =>
        {
            for (int length = 1; length <= 256; length++)
            {
                int valid = random.Next(length + 1);
                var x = KernelCheck.Random(random, length, -5, 5);
                var y = (float[])x.Clone();
                Softmax.Row(y, valid, isa);
                var expected = Reference(x.AsSpan(0, valid), default);
                if (valid > 0) Assert.True(KernelCheck.RelativeErrorNorm(y.AsSpan(0, valid), expected) <= 1e-6,
                    $"{isa} n={length} valid={valid}");
                Assert.All(y[valid..], v => Assert.Equal(0f, v));
            }
        });
    }

    [Fact]
    public void HugeAndNegativeInfiniteEntriesStayFinite()
    {
        KernelCheck.ForEachIsa(isa =>
        {
            foreach (int length in new[] { 3, 17, 40, 129 })
            {
                var x = new float[length];
                for (int j = 0; j < length; j++)
                    x[j] = (j % 3) switch { 0 => float.MaxValue, 1 => float.NegativeInfinity, _ => -float.MaxValue };
                var y = (float[])x.Clone();
                Softmax.Rows(y, 1, length, isa: isa);
                int maxima = (length + 2) / 3;
                for (int j = 0; j < length; j++)
                    Assert.Equal(j % 3 == 0 ? 1.0 / maxima : 0.0, y[j], 1e-7);

                var mixed = KernelCheck.Random(new Random(length), length, -1, 1);
                mixed[length / 2] = 1e30f;
                mixed[0] = float.NegativeInfinity;
                var expected = Reference(mixed, default);
                Softmax.Rows(mixed, 1, length, isa: isa);
                Assert.True(KernelCheck.RelativeErrorNorm(mixed, expected) <= 1e-6, $"{isa} n={length}");
            }
        });
    }

    [Fact]
    public void FullyMaskedRowIsAllZerosNotNaN()
    {
        KernelCheck.ForEachIsa(isa =>
        {
            foreach (int length in new[] { 1, 5, 16, 33, 100 })
            {
                var x = KernelCheck.Random(new Random(length), 2 * length, -1, 1);
                var mask = Enumerable.Repeat(float.NegativeInfinity, length).ToArray();
                Softmax.Rows(x, 2, length, mask, isa);
                Assert.All(x, v => Assert.Equal(0f, v));

                var infinite = Enumerable.Repeat(float.NegativeInfinity, length).ToArray();
                Softmax.Row(infinite, length, isa);
                Assert.All(infinite, v => Assert.Equal(0f, v));
            }
        });
    }
}
