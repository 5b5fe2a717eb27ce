namespace EdgeBert.Tests;

/// <summary>Central finite differences in double against an independent double forward.</summary>
static class AutogradGradCheck
{
    /// <summary>For L(x) = sum_i upstream[i] * reference(x)[i], checks every analytic gradient
    /// (null entries are skipped) against (L(x + h e) - L(x - h e)) / 2h, per input:
    /// max |analytic - numeric| / max |numeric| must be at most the tolerance. An input whose
    /// gradient is tiny next to the others' is measured against 1% of the largest gradient, since
    /// float rounding of the shared intermediate values sets an absolute error floor.</summary>
    public static void AssertGradients(Func<double[][], double[]> reference, float[][] inputs, float[]?[] analytic,
        float[] upstream, double tolerance = 1e-3, double step = 1e-4)
    {
        var point = inputs.Select(a => a.Select(v => (double)v).ToArray()).ToArray();
        var numeric = new double[inputs.Length][];
        double largest = 1e-6;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (analytic[i] is not { } grad) continue;
            Assert.Equal(inputs[i].Length, grad.Length);
            numeric[i] = new double[grad.Length];
            for (int e = 0; e < grad.Length; e++)
            {
                double saved = point[i][e];
                point[i][e] = saved + step;
                double plus = Weighted(reference(point), upstream);
                point[i][e] = saved - step;
                double minus = Weighted(reference(point), upstream);
                point[i][e] = saved;
                numeric[i][e] = (plus - minus) / (2 * step);
                largest = Math.Max(largest, Math.Abs(numeric[i][e]));
            }
        }
        for (int i = 0; i < inputs.Length; i++)
        {
            if (analytic[i] is not { } grad) continue;
            double worst = 0, scale = 0.01 * largest;
            for (int e = 0; e < grad.Length; e++)
            {
                worst = Math.Max(worst, Math.Abs(grad[e] - numeric[i][e]));
                scale = Math.Max(scale, Math.Abs(numeric[i][e]));
            }
            Assert.True(worst / scale <= tolerance,
                $"input {i}: max gradient error {worst:G4} vs max |gradient| {scale:G4}");
        }
    }

    /// <summary>The float forward against the double reference: max error relative to max |value|.</summary>
    public static void AssertForward(double[] expected, float[] actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0, scale = 1e-30;
        for (int i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        Assert.True(worst / scale <= tolerance, $"forward error {worst:G4} vs max |value| {scale:G4}");
    }

    public static float[] RandomArray(Random random, int length, double amplitude = 1.0) =>
        Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() * 2 - 1) * amplitude)).ToArray();

    static double Weighted(double[] values, float[] weights)
    {
        Assert.Equal(weights.Length, values.Length);
        double sum = 0;
        for (int i = 0; i < values.Length; i++) sum += weights[i] * values[i];
        return sum;
    }

    /// <summary>erf by its Maclaurin series, accurate to about 1e-13 for |x| <= 4.</summary>
    public static double Erf(double x)
    {
        if (Math.Abs(x) > 4) return Math.Sign(x) * 1.0;
        double term = x, sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= -x * x / n;
            double add = term / (2 * n + 1);
            sum += add;
            if (Math.Abs(add) < 1e-17) break;
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }
}
