using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class LayerNormTests
{
    /// <summary>LayerNorm of one row in double: two-pass mean and biased variance, eps inside the sqrt.</summary>
    static double[] Reference(ReadOnlySpan<double> x, ReadOnlySpan<double> gamma, ReadOnlySpan<double> beta, double eps,
        out double mean, out double rstd)
    {
        int n = x.Length;
        mean = 0;
        for (int j = 0; j < n; j++) mean += x[j];
        mean /= n;
        double variance = 0;
        for (int j = 0; j < n; j++) variance += (x[j] - mean) * (x[j] - mean);
        variance /= n;
        rstd = 1 / Math.Sqrt(variance + eps);
        var y = new double[n];
        for (int j = 0; j < n; j++) y[j] = (x[j] - mean) * rstd * gamma[j] + beta[j];
        return y;
    }

    static void CheckRows(Isa isa, float[] x, int rows, int cols, float eps, Random random, string what)
    {
        var gamma = KernelCheck.Random(random, cols, 0.5, 1.5);
        var beta = KernelCheck.Random(random, cols, -1, 1);
        var y = new float[rows * cols];
        var mean = new float[rows];
        var rstd = new float[rows];
        LayerNorm.Forward(x, y, rows, cols, gamma, beta, eps, mean, rstd, isa);
        var inPlace = (float[])x.Clone();
        LayerNorm.Forward(inPlace, inPlace, rows, cols, gamma, beta, eps, isa: isa);
        Assert.Equal(y, inPlace);
        for (int r = 0; r < rows; r++)
        {
            var expected = Reference(KernelCheck.ToDouble(x.AsSpan(r * cols, cols)), KernelCheck.ToDouble(gamma),
                KernelCheck.ToDouble(beta), eps, out double expectedMean, out double expectedRstd);
            double error = KernelCheck.RelativeErrorNorm(y.AsSpan(r * cols, cols), expected);
            Assert.True(error <= 1e-6, $"{what} row {r}: relative error {error:E2}");
            Assert.True(Math.Abs(mean[r] - expectedMean) <= 1e-6 * Math.Max(1, Math.Abs(expectedMean)), $"{what} mean");
            Assert.True(Math.Abs(rstd[r] - expectedRstd) <= 1e-6 * expectedRstd,
                $"{what} rstd {rstd[r]} vs {expectedRstd}");
        }
    }

    [Fact]
    public void ForwardMatchesDoubleForEveryLengthAndInPlace()
    {
        var random = new Random(41);
        KernelCheck.ForEachIsa(isa =>
        {
            for (int cols = 2; cols <= 256; cols++)
                CheckRows(isa, KernelCheck.Random(random, 3 * cols, -3, 5), 3, cols, 1e-5f, random,
                    $"{isa} cols={cols}");
        });
    }

    [Fact]
    public void LargeMeanRowsStayAccurateWithTinyEps()
    {
        var random = new Random(42);
        KernelCheck.ForEachIsa(isa =>
        {
            foreach (int cols in new[] { 7, 64, 100, 768 })
                foreach (var (center, spread) in new[] { (1e4, 1.0), (1e4, 0.05), (-3e3, 0.01), (1e6, 30.0) })
                {
                    var x = KernelCheck.Random(random, 2 * cols, center - spread, center + spread);
                    CheckRows(isa, x, 2, cols, 1e-12f, random, $"{isa} cols={cols} mean={center} spread={spread}");
                }
        });
    }

    [Fact]
    public void ConstantRowsGiveBeta()
    {
        var random = new Random(43);
        KernelCheck.ForEachIsa(isa =>
        {
            foreach (int cols in new[] { 1, 3, 16, 17, 100, 768 })
                foreach (float value in new[] { 0f, 0.1f, 7.3f, -1234.567f, 3e7f })
                {
                    var x = Enumerable.Repeat(value, cols).ToArray();
                    var gamma = KernelCheck.Random(random, cols, 0.5, 1.5);
                    var beta = KernelCheck.Random(random, cols, -1, 1);
                    var y = new float[cols];
                    LayerNorm.Forward(x, y, 1, cols, gamma, beta, 1e-12f, isa: isa);
                    for (int j = 0; j < cols; j++)
                        Assert.True(Math.Abs(y[j] - beta[j]) <= 1e-6,
                            $"{isa} cols={cols} value={value}: {y[j]} vs beta {beta[j]}");
                }
        });
    }

    [Fact]
    public void BackwardMatchesCentralDifferences()
    {
        var random = new Random(44);
        const double h = 1e-6;
        KernelCheck.ForEachIsa(isa =>
        {
            foreach (int cols in new[] { 1, 2, 5, 16, 33, 130 })
            {
                const int rows = 2;
                const float eps = 1e-5f;
                var x = KernelCheck.Random(random, rows * cols, -2, 3);
                var gamma = KernelCheck.Random(random, cols, 0.5, 1.5);
                var beta = KernelCheck.Random(random, cols, -1, 1);
                var dy = KernelCheck.Random(random, rows * cols, -1, 1);
                var y = new float[rows * cols];
                var mean = new float[rows];
                var rstd = new float[rows];
                LayerNorm.Forward(x, y, rows, cols, gamma, beta, eps, mean, rstd, isa);
                var dx = new float[rows * cols];
                var dgamma = KernelCheck.Random(random, cols, -1, 1);
                var dbeta = KernelCheck.Random(random, cols, -1, 1);
                var dgammaStart = KernelCheck.ToDouble(dgamma);
                var dbetaStart = KernelCheck.ToDouble(dbeta);
                LayerNorm.Backward(x, dy, gamma, mean, rstd, rows, cols, dx, dgamma, dbeta, isa);

                // Loss = sum over rows of dy . LN(x) in double; gradients by central differences.
                var xd = KernelCheck.ToDouble(x);
                var gd = KernelCheck.ToDouble(gamma);
                var bd = KernelCheck.ToDouble(beta);
                double Loss()
                {
                    double loss = 0;
                    for (int r = 0; r < rows; r++)
                    {
                        var yr = Reference(xd.AsSpan(r * cols, cols), gd, bd, eps, out _, out _);
                        for (int j = 0; j < cols; j++) loss += dy[r * cols + j] * yr[j];
                    }
                    return loss;
                }
                double[] Differences(double[] parameters, double[] start)
                {
                    var grad = (double[])start.Clone();
                    for (int i = 0; i < parameters.Length; i++)
                    {
                        double saved = parameters[i];
                        parameters[i] = saved + h; double up = Loss();
                        parameters[i] = saved - h; double down = Loss();
                        parameters[i] = saved;
                        grad[i] += (up - down) / (2 * h);
                    }
                    return grad;
                }
                // dx is a difference of terms of size rstd * dy * gamma that nearly cancel for short rows,
                // so its error is measured against the size of those terms.
                var dxExpected = Differences(xd, new double[rows * cols]);
                double termNorm = 0, expectedNorm = 0, differenceNorm = 0;
                for (int i = 0; i < dx.Length; i++)
                {
                    termNorm += Math.Pow(rstd[i / cols] * dy[i] * gamma[i % cols], 2);
                    expectedNorm += dxExpected[i] * dxExpected[i];
                    differenceNorm += Math.Pow(dx[i] - dxExpected[i], 2);
                }
                double dxError = Math.Sqrt(differenceNorm / Math.Max(expectedNorm, termNorm));
                double dgError = KernelCheck.RelativeErrorNorm(dgamma, Differences(gd, dgammaStart));
                double dbError = KernelCheck.RelativeErrorNorm(dbeta, Differences(bd, dbetaStart));
                Assert.True(dxError <= 1e-5, $"{isa} cols={cols}: dx error {dxError:E2}");
                Assert.True(dgError <= 1e-5, $"{isa} cols={cols}: dgamma error {dgError:E2}");
                Assert.True(dbError <= 1e-5, $"{isa} cols={cols}: dbeta error {dbError:E2}");

                var inPlace = (float[])dy.Clone();
                LayerNorm.Backward(x, inPlace, gamma, mean, rstd, rows, cols, inPlace, new float[cols], new float[cols],
                    isa);
                Assert.Equal(dx, inPlace);
            }
        });
    }
}
