namespace EdgeBert.Kernels;

/// <summary>Scalar twin of <see cref="Softmax"/>.</summary>
internal static class SoftmaxReference
{
    /// <summary>Softmax of row + mask (mask empty means none) in place.</summary>
    internal static void Row(Span<float> row, ReadOnlySpan<float> additiveMask)
    {
        bool masked = !additiveMask.IsEmpty;
        float max = float.NegativeInfinity;
        for (int j = 0; j < row.Length; j++)
        {
            float s = masked ? row[j] + additiveMask[j] : row[j];
            row[j] = s;
            max = MathF.Max(max, s);
        }
        if (float.IsNegativeInfinity(max)) { row.Clear(); return; }
        float sum = 0;
        for (int j = 0; j < row.Length; j++)
        {
            float e = MathF.Exp(row[j] - max);
            row[j] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int j = 0; j < row.Length; j++) row[j] *= inv;
    }
}
