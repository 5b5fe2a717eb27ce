using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>LayerNorm over the last dimension of a row-major [rows, cols] matrix:
/// y = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance (divide by cols).
/// Runs the given path (null: <see cref="IsaSelector.Default"/>).</summary>
public static class LayerNorm
{
    /// <summary>Normalises every row. x and y may be the same span. When <paramref name="mean"/> and
    /// <paramref name="rstd"/> are given (length rows) they receive each row's mean and
    /// 1/sqrt(var + eps) for <see cref="Backward"/>.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> mean = default, Span<float> rstd = default, Isa? isa = null)
    {
        CheckShape(x.Length, rows, cols, gamma.Length, nameof(x));
        CheckShape(y.Length, rows, cols, beta.Length, nameof(y));
        bool save = !mean.IsEmpty || !rstd.IsEmpty;
        if (save && (mean.Length < rows || rstd.Length < rows))
            throw new ArgumentException("mean and rstd need one entry per row");
        for (int r = 0; r < rows; r++)
        {
            var row = new ForwardRow(x.Slice(r * cols, cols), y.Slice(r * cols, cols), gamma, beta, eps);
            IsaDispatch.Run(isa, ref row);
            if (save) { mean[r] = row.Mean; rstd[r] = row.Rstd; }
        }
    }

    /// <summary>Gradients of <see cref="Forward"/> given the saved mean and rstd. dx is
    /// overwritten (it may alias dy); dgamma and dbeta (length cols) are accumulated into.</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, int rows, int cols,
        Span<float> dx, Span<float> dgamma, Span<float> dbeta, Isa? isa = null)
    {
        CheckShape(x.Length, rows, cols, gamma.Length, nameof(x));
        CheckShape(dy.Length, rows, cols, dgamma.Length, nameof(dy));
        CheckShape(dx.Length, rows, cols, dbeta.Length, nameof(dx));
        if (mean.Length < rows || rstd.Length < rows)
            throw new ArgumentException("mean and rstd need one entry per row");
        for (int r = 0; r < rows; r++)
        {
            var row = new BackwardRow(x.Slice(r * cols, cols), dy.Slice(r * cols, cols), gamma, mean[r], rstd[r],
                dx.Slice(r * cols, cols), dgamma, dbeta);
            IsaDispatch.Run(isa, ref row);
        }
    }

    /// <summary>One row of <see cref="Forward"/>, for <see cref="IsaDispatch"/>; it returns the row's statistics.
    /// </summary>
    ref struct ForwardRow(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        float eps) : IIsaWork
    {
        readonly ReadOnlySpan<float> _x = x, _gamma = gamma, _beta = beta;
        readonly Span<float> _y = y;

        public float Mean { get; private set; }
        public float Rstd { get; private set; }

        public void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV> =>
            (Mean, Rstd) = RowCore<TV, S>(_x, _y, _gamma, _beta, eps);
        public void RunScalar() => (Mean, Rstd) = LayerNormReference.Row(_x, _y, _gamma, _beta, eps);
    }

    /// <summary>One row of <see cref="Backward"/>, for <see cref="IsaDispatch"/>.</summary>
    ref struct BackwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gamma,
        float mean, float rstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta) : IIsaWork
    {
        readonly ReadOnlySpan<float> _x = x, _dy = dy, _gamma = gamma;
        readonly Span<float> _dx = dx, _dgamma = dgamma, _dbeta = dbeta;

        public readonly void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV> =>
            BackwardRowCore<TV, S>(_x, _dy, _gamma, mean, rstd, _dx, _dgamma, _dbeta);
        public readonly void RunScalar() =>
            LayerNormReference.BackwardRow(_x, _dy, _gamma, mean, rstd, _dx, _dgamma, _dbeta);
    }

    /// <summary>Vector form of <see cref="LayerNormReference.Row"/> (same passes, same corrections).</summary>
    static (float Mean, float Rstd) RowCore<TV, S>(ReadOnlySpan<float> x, Span<float> y,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps) where TV : struct where S : struct, ISimd<TV>
    {
        int n = x.Length;
        int whole = n - n % S.Count;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        ref float gs = ref MemoryMarshal.GetReference(gamma);
        ref float bs = ref MemoryMarshal.GetReference(beta);

        double total = S.WideSum(ref xs, whole);
        for (int j = whole; j < n; j++) total += x[j];
        float mean = (float)(total / n);

        var meanSplat = S.Splat(mean);
        TV deviations = default, squares = default;
        for (int j = 0; j < whole; j += S.Count)
        {
            var d = S.Subtract(S.Load(ref xs, j), meanSplat);
            deviations = S.Add(deviations, d);
            squares = S.MulAdd(d, d, squares);
        }
        float deviationSum = S.Sum(deviations), squareSum = S.Sum(squares);
        for (int j = whole; j < n; j++)
        {
            float d = x[j] - mean;
            deviationSum += d;
            squareSum += d * d;
        }
        float shift = deviationSum / n;
        float variance = MathF.Max(squareSum / n - shift * shift, 0f);
        float rstd = 1f / MathF.Sqrt(variance + eps);

        var shiftSplat = S.Splat(shift);
        var rstdSplat = S.Splat(rstd);
        for (int j = 0; j < whole; j += S.Count)
        {
            var xhat = S.Multiply(S.Subtract(S.Subtract(S.Load(ref xs, j), meanSplat), shiftSplat), rstdSplat);
            S.Store(S.MulAdd(xhat, S.Load(ref gs, j), S.Load(ref bs, j)), ref ys, j);
        }
        for (int j = whole; j < n; j++)
            y[j] = (x[j] - mean - shift) * rstd * gamma[j] + beta[j];
        return (mean + shift, rstd);
    }

    /// <summary>Vector form of <see cref="LayerNormReference.BackwardRow"/>.</summary>
    static void BackwardRowCore<TV, S>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gamma,
        float mean, float rstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta)
        where TV : struct where S : struct, ISimd<TV>
    {
        int n = x.Length;
        int whole = n - n % S.Count;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float dys = ref MemoryMarshal.GetReference(dy);
        ref float gs = ref MemoryMarshal.GetReference(gamma);
        ref float dxs = ref MemoryMarshal.GetReference(dx);
        ref float dgs = ref MemoryMarshal.GetReference(dgamma);
        ref float dbs = ref MemoryMarshal.GetReference(dbeta);
        var meanSplat = S.Splat(mean);
        var rstdSplat = S.Splat(rstd);

        TV gSums = default, gxSums = default;
        for (int j = 0; j < whole; j += S.Count)
        {
            var xhat = S.Multiply(S.Subtract(S.Load(ref xs, j), meanSplat), rstdSplat);
            var d = S.Load(ref dys, j);
            var g = S.Multiply(d, S.Load(ref gs, j));
            gSums = S.Add(gSums, g);
            gxSums = S.MulAdd(g, xhat, gxSums);
            S.Store(S.MulAdd(d, xhat, S.Load(ref dgs, j)), ref dgs, j);
            S.Store(S.Add(d, S.Load(ref dbs, j)), ref dbs, j);
        }
        float gSum = S.Sum(gSums), gxSum = S.Sum(gxSums);
        for (int j = whole; j < n; j++)
        {
            float xhat = (x[j] - mean) * rstd;
            float g = dy[j] * gamma[j];
            gSum += g;
            gxSum += g * xhat;
            dgamma[j] += dy[j] * xhat;
            dbeta[j] += dy[j];
        }

        float gMean = gSum / n, gxMean = gxSum / n;
        var gMeanSplat = S.Splat(gMean);
        var gxMeanSplat = S.Splat(gxMean);
        for (int j = 0; j < whole; j += S.Count)
        {
            var xhat = S.Multiply(S.Subtract(S.Load(ref xs, j), meanSplat), rstdSplat);
            var g = S.Multiply(S.Load(ref dys, j), S.Load(ref gs, j));
            var inner = S.Subtract(S.Subtract(g, gMeanSplat), S.Multiply(xhat, gxMeanSplat));
            S.Store(S.Multiply(rstdSplat, inner), ref dxs, j);
        }
        for (int j = whole; j < n; j++)
        {
            float xhat = (x[j] - mean) * rstd;
            dx[j] = rstd * (dy[j] * gamma[j] - gMean - xhat * gxMean);
        }
    }

    static void CheckShape(int length, int rows, int cols, int paramLength, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (length < (long)rows * cols) throw new ArgumentException($"{name} shorter than rows * cols");
        if (paramLength != cols) throw new ArgumentException("gamma/beta/dgamma/dbeta must have length cols");
    }
}
