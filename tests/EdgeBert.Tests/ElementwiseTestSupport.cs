using EdgeBert.Kernels;

namespace EdgeBert.Tests;

/// <summary>Shared pieces of the element-wise kernel tests: running a check under every ISA path,
/// error norms, and double-precision references written independently of the kernels.</summary>
internal static class KernelCheck
{
    /// <summary>Runs <paramref name="check"/> once per ISA path this CPU supports; it passes the path to the
    /// kernels.</summary>
    public static void ForEachIsa(Action<Isa> check)
    {
        foreach (var isa in IsaSelector.Supported) check(isa);
    }

    /// <summary>||actual - expected|| / ||expected|| (or the plain norm when expected is zero).</summary>
    public static double RelativeErrorNorm(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        return ErrorNorm.Relative(actual, expected);
    }

    public static float[] Random(Random random, int length, double low, double high)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = (float)(low + (high - low) * random.NextDouble());
        return values;
    }

    public static double[] ToDouble(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }

    /// <summary>erf in double from the everywhere-positive series
    /// erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)) (no cancellation),
    /// with erf = sign(x) beyond |x| = 6 where 1 - erf < 3e-17.</summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        if (a >= 6) return Math.Sign(x);
        double term = a, sum = a;
        for (int n = 1; term > 1e-18 * sum; n++)
        {
            term *= 2 * a * a / (2 * n + 1);
            sum += term;
        }
        return Math.CopySign(2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum, x);
    }

    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));
}
