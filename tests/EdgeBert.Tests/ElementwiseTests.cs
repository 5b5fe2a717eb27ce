using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class ElementwiseTests
{
    static void AssertClose(ReadOnlySpan<float> actual, Func<int, double> expected, string what)
    {
        for (int i = 0; i < actual.Length; i++)
        {
            double e = expected(i);
            Assert.True(Math.Abs(actual[i] - e) <= 1.5e-7 * Math.Abs(e) + 1e-30,
                $"{what}[{i}] = {actual[i]:R}, expected {e:R}");
        }
    }

    [Fact]
    public void BinaryOpsMatchDoubleForEveryLengthAndInPlace()
    {
        var random = new Random(31);
        KernelCheck.ForEachIsa(isa =>
        {
            for (int n = 1; n <= 256; n++)
            {
                var a = KernelCheck.Random(random, n, -4, 4);
                var b = KernelCheck.Random(random, n, -4, 4);
                var y = new float[n];

                Elementwise.Add(a, b, y, isa);
                AssertClose(y, i => (double)a[i] + b[i], $"{isa} add n={n}");
                var sum = (float[])a.Clone();
                Elementwise.AddInPlace(sum, b, isa);
                Assert.Equal(y, sum);

                Elementwise.Multiply(a, b, y, isa);
                AssertClose(y, i => (double)a[i] * b[i], $"{isa} mul n={n}");
                var product = (float[])a.Clone();
                Elementwise.Multiply(product, b, product, isa);
                Assert.Equal(y, product);

                Elementwise.Scale(a, -1.7f, y, isa);
                AssertClose(y, i => a[i] * (double)-1.7f, $"{isa} scale n={n}");
                var scaled = (float[])a.Clone();
                Elementwise.Scale(scaled, -1.7f, scaled, isa);
                Assert.Equal(y, scaled);

                var axpy = (float[])b.Clone();
                Elementwise.Axpy(0.3f, a, axpy, isa);
                for (int i = 0; i < n; i++)
                {
                    double e = b[i] + (double)0.3f * a[i];
                    Assert.True(Math.Abs(axpy[i] - e) <= 3e-7 * (Math.Abs(b[i]) + Math.Abs(0.3 * a[i])),
                        $"{isa} axpy n={n}");
                }

                double dot = 0, magnitude = 0;
                for (int i = 0; i < n; i++) { dot += (double)a[i] * b[i]; magnitude += Math.Abs((double)a[i] * b[i]); }
                Assert.True(Math.Abs(Elementwise.Dot(a, b, isa) - dot) <= 1e-6 * magnitude, $"{isa} dot n={n}");
            }
        });
    }

    [Fact]
    public void BiasAndColumnSumsMatchDouble()
    {
        var random = new Random(32);
        KernelCheck.ForEachIsa(isa =>
        {
            foreach (int cols in new[] { 1, 7, 16, 31, 64, 65, 255, 256 })
            {
                const int rows = 5;
                var x = KernelCheck.Random(random, rows * cols, -2, 2);
                var bias = KernelCheck.Random(random, cols, -2, 2);
                var y = (float[])x.Clone();
                Elementwise.AddBias(y, rows, cols, bias, isa);
                AssertClose(y, i => (double)x[i] + bias[i % cols], $"{isa} bias cols={cols}");

                var sums = KernelCheck.Random(random, cols, -1, 1);
                var start = (float[])sums.Clone();
                Elementwise.AccumulateColumnSums(x, rows, cols, sums, isa);
                for (int c = 0; c < cols; c++)
                {
                    double e = start[c], magnitude = Math.Abs(start[c]);
                    for (int r = 0; r < rows; r++) { e += x[r * cols + c]; magnitude += Math.Abs(x[r * cols + c]); }
                    Assert.True(Math.Abs(sums[c] - e) <= 1e-6 * magnitude, $"{isa} column sums cols={cols}");
                }
            }
        });
    }
}
