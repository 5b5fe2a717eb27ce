using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>Numerically stable row softmax (the row maximum is subtracted before exp).
/// A row whose every entry is -inf (a fully masked row) comes out as all zeros, never NaN.
/// A +inf or NaN entry yields NaN in its row (garbage in, visible garbage out).
/// Runs the given path (null: <see cref="IsaSelector.Default"/>).</summary>
public static class Softmax
{
    /// <summary>Softmax over row[..validLength] in place; entries from validLength on become 0.</summary>
    public static void Row(Span<float> row, int validLength, Isa? isa = null)
    {
        if ((uint)validLength > (uint)row.Length) throw new ArgumentOutOfRangeException(nameof(validLength));
        RowMasked(row[..validLength], default, isa);
        row[validLength..].Clear();
    }

    /// <summary>Softmax of each row of a row-major [rows, cols] matrix in place, after adding
    /// <paramref name="additiveKeyMask"/> (length cols, e.g. 0 or -inf / -10000) to every row.</summary>
    public static void Rows(Span<float> x, int rows, int cols, ReadOnlySpan<float> additiveKeyMask = default,
        Isa? isa = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (x.Length < (long)rows * cols) throw new ArgumentException("x shorter than rows * cols");
        if (!additiveKeyMask.IsEmpty && additiveKeyMask.Length != cols)
            throw new ArgumentException("mask length must equal cols");
        for (int r = 0; r < rows; r++) RowMasked(x.Slice(r * cols, cols), additiveKeyMask, isa);
    }

    /// <summary>Softmax of row + additiveMask in place (an empty mask means none).</summary>
    static void RowMasked(Span<float> row, ReadOnlySpan<float> additiveMask, Isa? isa)
    {
        var work = new RowWork(row, additiveMask);
        IsaDispatch.Run(isa, ref work);
    }

    /// <summary>One row's arguments, for <see cref="IsaDispatch"/>.</summary>
    ref struct RowWork(Span<float> row, ReadOnlySpan<float> additiveMask) : IIsaWork
    {
        readonly Span<float> _row = row;
        readonly ReadOnlySpan<float> _additiveMask = additiveMask;

        public void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV> =>
            RowCore<TV, S>(_row, _additiveMask);
        public void RunScalar() => SoftmaxReference.Row(_row, _additiveMask);
    }

    internal static void RowCore<TV, S>(Span<float> row, ReadOnlySpan<float> additiveMask)
        where TV : struct where S : struct, ISimd<TV>
    {
        int n = row.Length;
        int whole = n - n % S.Count;
        bool masked = !additiveMask.IsEmpty;
        ref float r = ref MemoryMarshal.GetReference(row);
        ref float m = ref MemoryMarshal.GetReference(additiveMask);

        var maxVector = S.Splat(float.NegativeInfinity);
        for (int j = 0; j < whole; j += S.Count)
        {
            var s = S.Load(ref r, j);
            if (masked) { s = S.Add(s, S.Load(ref m, j)); S.Store(s, ref r, j); }
            maxVector = S.Max(maxVector, s);
        }
        float max = S.MaxAcross(maxVector);
        for (int j = whole; j < n; j++)
        {
            if (masked) row[j] += additiveMask[j];
            max = MathF.Max(max, row[j]);
        }
        if (float.IsNegativeInfinity(max)) { row.Clear(); return; }

        var maxSplat = S.Splat(max);
        var sumVector = S.Splat(0f);
        for (int j = 0; j < whole; j += S.Count)
        {
            var e = S.Exp(S.Subtract(S.Load(ref r, j), maxSplat));
            S.Store(e, ref r, j);
            sumVector = S.Add(sumVector, e);
        }
        float sum = S.Sum(sumVector);
        for (int j = whole; j < n; j++)
        {
            float e = MathF.Exp(row[j] - max);
            row[j] = e;
            sum += e;
        }

        float inv = 1f / sum;
        var invSplat = S.Splat(inv);
        for (int j = 0; j < whole; j += S.Count) S.Store(S.Multiply(S.Load(ref r, j), invSplat), ref r, j);
        for (int j = whole; j < n; j++) row[j] *= inv;
    }
}
