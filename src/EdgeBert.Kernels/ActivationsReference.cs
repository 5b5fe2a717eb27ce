namespace EdgeBert.Kernels;

/// <summary>Readable scalar twins of <see cref="Activations"/>: the Isa.Scalar path and the
/// tail loop of the vector paths, so every path shares one erf approximation.</summary>
internal static class ActivationsReference
{
    internal const float InvSqrt2 = 0.70710678118654752f;
    internal const float InvSqrt2Pi = 0.39894228040143268f;

    // Abramowitz & Stegun 7.1.26 (Hastings): erf(x) = 1 - t (a1 + t (a2 + ...)) exp(-x^2),
    // t = 1 / (1 + p x) for x >= 0; absolute error <= 1.5e-7 in exact arithmetic.
    internal const float ErfP = 0.3275911f;
    internal const float ErfA1 = 0.254829592f, ErfA2 = -0.284496736f, ErfA3 = 1.421413741f,
                         ErfA4 = -1.453152027f, ErfA5 = 1.061405429f;

    internal static float Erf(float x)
    {
        float a = MathF.Abs(x);
        float t = 1f / (1f + ErfP * a);
        float poly = t * (ErfA1 + t * (ErfA2 + t * (ErfA3 + t * (ErfA4 + t * ErfA5))));
        return MathF.CopySign(1f - poly * MathF.Exp(-a * a), x);
    }

    internal static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = Erf(x[i]);
    }

    internal static float Gelu(float x) => 0.5f * x * (1f + Erf(x * InvSqrt2));

    internal static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = Gelu(x[i]);
    }

    internal static float GeluBackward(float x, float dy)
    {
        float cdf = 0.5f * (1f + Erf(x * InvSqrt2));
        float pdf = InvSqrt2Pi * MathF.Exp(-0.5f * x * x);
        return dy * (cdf + x * pdf);
    }

    internal static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++) dx[i] = GeluBackward(x[i], dy[i]);
    }

    // Below this |x|, tanh uses its Taylor series (radius pi/2: each term shrinks by about
    // (0.55 / (pi/2))^2 = 0.12, so ten terms reach float precision); above it 1 - 2 / (exp(2|x|) + 1)
    // has no cancellation because the result is at least 0.5.
    internal const float TanhSeriesLimit = 0.55f;
    internal static readonly float[] TanhSeries =
    [
        1f, -1f / 3, 2f / 15, -17f / 315, 62f / 2835, -1382f / 155925, 21844f / 6081075,
        -929569f / 638512875, 6404582f / 10854718875, -443861162f / 1856156927625,
    ];

    internal static float Tanh(float x)
    {
        float a = MathF.Abs(x);
        if (a < TanhSeriesLimit)
        {
            float x2 = x * x, poly = TanhSeries[^1];
            for (int c = TanhSeries.Length - 2; c >= 0; c--) poly = poly * x2 + TanhSeries[c];
            return x * poly;
        }
        return MathF.CopySign(1f - 2f / (MathF.Exp(2f * a) + 1f), x);
    }

    internal static void Tanh(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = Tanh(x[i]);
    }
}
