namespace EdgeBert.Kernels;

/// <summary>LayerNorm over the last dimension of a row-major [rows, cols] matrix:
/// y = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance (divide by cols).</summary>
public static class LayerNorm
{
    /// <summary>Normalises every row. x and y may be the same span. When <paramref name="mean"/> and
    /// <paramref name="rstd"/> are given (length rows) they receive each row's mean and
    /// 1/sqrt(var + eps) for <see cref="Backward"/>.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> mean = default, Span<float> rstd = default)
    {
        CheckShape(x.Length, rows, cols, gamma.Length, nameof(x));
        CheckShape(y.Length, rows, cols, beta.Length, nameof(y));
        bool save = !mean.IsEmpty || !rstd.IsEmpty;
        if (save && (mean.Length < rows || rstd.Length < rows)) throw new ArgumentException("mean and rstd need one entry per row");
        for (int r = 0; r < rows; r++)
        {
            var (m, s) = LayerNormReference.Row(x.Slice(r * cols, cols), y.Slice(r * cols, cols), gamma, beta, eps);
            if (save) { mean[r] = m; rstd[r] = s; }
        }
    }

    /// <summary>Gradients of <see cref="Forward"/> given the saved mean and rstd. dx is
    /// overwritten (it may alias dy); dgamma and dbeta (length cols) are accumulated into.</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, int rows, int cols,
        Span<float> dx, Span<float> dgamma, Span<float> dbeta)
    {
        CheckShape(x.Length, rows, cols, gamma.Length, nameof(x));
        CheckShape(dy.Length, rows, cols, dgamma.Length, nameof(dy));
        CheckShape(dx.Length, rows, cols, dbeta.Length, nameof(dx));
        if (mean.Length < rows || rstd.Length < rows) throw new ArgumentException("mean and rstd need one entry per row");
        for (int r = 0; r < rows; r++)
            LayerNormReference.BackwardRow(x.Slice(r * cols, cols), dy.Slice(r * cols, cols), gamma, mean[r], rstd[r],
                dx.Slice(r * cols, cols), dgamma, dbeta);
    }

    static void CheckShape(int length, int rows, int cols, int paramLength, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (length < (long)rows * cols) throw new ArgumentException($"{name} shorter than rows * cols");
        if (paramLength != cols) throw new ArgumentException("gamma/beta/dgamma/dbeta must have length cols");
    }
}
