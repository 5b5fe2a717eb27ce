namespace EdgeBert.Kernels;

/// <summary>Numerically stable row softmax (the row maximum is subtracted before exp).
/// A row whose every entry is -inf (a fully masked row) comes out as all zeros, never NaN.
/// A +inf or NaN entry yields NaN in its row (garbage in, visible garbage out).</summary>
public static class Softmax
{
    /// <summary>Softmax over row[..validLength] in place; entries from validLength on become 0.</summary>
    public static void Row(Span<float> row, int validLength)
    {
        if ((uint)validLength > (uint)row.Length) throw new ArgumentOutOfRangeException(nameof(validLength));
        RowMasked(row[..validLength], default);
        row[validLength..].Clear();
    }

    /// <summary>Softmax of each row of a row-major [rows, cols] matrix in place, after adding
    /// <paramref name="additiveKeyMask"/> (length cols, e.g. 0 or -inf / -10000) to every row.</summary>
    public static void Rows(Span<float> x, int rows, int cols, ReadOnlySpan<float> additiveKeyMask = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (x.Length < (long)rows * cols) throw new ArgumentException("x shorter than rows * cols");
        if (!additiveKeyMask.IsEmpty && additiveKeyMask.Length != cols) throw new ArgumentException("mask length must equal cols");
        for (int r = 0; r < rows; r++) RowMasked(x.Slice(r * cols, cols), additiveKeyMask);
    }

    internal static void RowMasked(Span<float> row, ReadOnlySpan<float> additiveMask)
    {
        SoftmaxReference.Row(row, additiveMask);
    }
}
