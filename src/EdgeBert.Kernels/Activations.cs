namespace EdgeBert.Kernels;

/// <summary>Element-wise activations. Every method accepts x and y being the same span.</summary>
public static class Activations
{
    /// <summary>Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); x and y may alias.</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        ActivationsReference.Gelu(x, y[..x.Length]);
    }

    /// <summary>dx = dy * (Phi(x) + x phi(x)), the derivative of exact GELU; dx may alias x or dy.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length != x.Length) throw new ArgumentException("dy and x differ in length");
        CheckOutput(x.Length, dx.Length);
        ActivationsReference.GeluBackward(x, dy, dx[..x.Length]);
    }

    /// <summary>Error function, absolute error below 1e-6 for every float.</summary>
    public static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        ActivationsReference.Erf(x, y[..x.Length]);
    }

    /// <summary>Hyperbolic tangent (the pooler's activation).</summary>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        ActivationsReference.Tanh(x, y[..x.Length]);
    }

    static void CheckOutput(int inputLength, int outputLength)
    {
        if (outputLength < inputLength) throw new ArgumentException("output shorter than input");
    }
}
