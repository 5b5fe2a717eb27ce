namespace EdgeBert.Kernels;

/// <summary>Scalar twin of <see cref="Elementwise"/>.</summary>
internal static class ElementwiseReference
{
    internal static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] + b[i];
    }

    internal static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] * b[i];
    }

    internal static void Scale(ReadOnlySpan<float> x, float s, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * s;
    }

    internal static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] += a * x[i];
    }

    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }
}
