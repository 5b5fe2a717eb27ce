namespace EdgeBert.Kernels;

/// <summary>Element-wise activations. PLACEHOLDER bodies (scalar) until the SIMD versions land.</summary>
public static class Activations
{
    /// <summary>Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); x and y may alias.</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("output shorter than input");
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + ErfPlaceholder(v / Math.Sqrt(2))));
        }
    }

    static double ErfPlaceholder(double x)
    {
        // Abramowitz & Stegun 7.1.26 (abs error 1.5e-7); replaced by the vectorised kernel.
        double s = Math.Sign(x); x = Math.Abs(x);
        double t = 1 / (1 + 0.3275911 * x);
        double p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        return s * (1 - p * Math.Exp(-x * x));
    }
}
