namespace EdgeBert.Kernels;

/// <summary>Vector arithmetic the engine and autograd need. Outputs may alias inputs exactly
/// (same span), not partially.</summary>
public static class Elementwise
{
    /// <summary>y = a + b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        CheckSame(a.Length, b.Length);
        CheckOutput(a.Length, y.Length);
        ElementwiseReference.Add(a, b, y[..a.Length]);
    }

    /// <summary>y += x (residual connections, gradient accumulation).</summary>
    public static void AddInPlace(Span<float> y, ReadOnlySpan<float> x) => Add(y, x, y);

    /// <summary>y = a * b element by element.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        CheckSame(a.Length, b.Length);
        CheckOutput(a.Length, y.Length);
        ElementwiseReference.Multiply(a, b, y[..a.Length]);
    }

    /// <summary>Adds bias (length cols) to every row of a row-major [rows, cols] matrix.</summary>
    public static void AddBias(Span<float> x, int rows, int cols, ReadOnlySpan<float> bias)
    {
        CheckMatrix(x.Length, rows, cols);
        if (bias.Length != cols) throw new ArgumentException("bias length must equal cols");
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            Add(row, bias, row);
        }
    }

    /// <summary>y = s * x.</summary>
    public static void Scale(ReadOnlySpan<float> x, float s, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        ElementwiseReference.Scale(x, s, y[..x.Length]);
    }

    /// <summary>y += a * x.</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        ElementwiseReference.Axpy(a, x, y[..x.Length]);
    }

    /// <summary>Sum of a[i] * b[i].</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        CheckSame(a.Length, b.Length);
        return ElementwiseReference.Dot(a, b);
    }

    /// <summary>sums[c] += sum over rows of x[r, c] (bias gradients).</summary>
    public static void AccumulateColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sums)
    {
        CheckMatrix(x.Length, rows, cols);
        if (sums.Length != cols) throw new ArgumentException("sums length must equal cols");
        for (int r = 0; r < rows; r++) AddInPlace(sums, x.Slice(r * cols, cols));
    }

    static void CheckSame(int a, int b)
    {
        if (a != b) throw new ArgumentException("inputs differ in length");
    }

    static void CheckOutput(int inputLength, int outputLength)
    {
        if (outputLength < inputLength) throw new ArgumentException("output shorter than input");
    }

    static void CheckMatrix(int length, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (length < (long)rows * cols) throw new ArgumentException("span shorter than rows * cols");
    }
}
