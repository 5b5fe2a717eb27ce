using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>Multi-head self-attention for one sequence: P = softmax(Q K^T / sqrt(headDim) + mask),
/// context = P V. Q, K and V rows are tokens with row stride <c>ld</c>; head h occupies columns
/// h*headDim .. (h+1)*headDim-1 (so q, k, v may be slices of one fused QKV buffer).
/// Probabilities are [heads, n, n] row-major, row = query, column = key.</summary>
public static class Attention
{
    /// <summary>All heads. context is [n, heads*headDim] with stride ldContext; probs (length
    /// heads*n*n) is always written. additiveKeyMask (length n, 0 or a large negative / -inf) is
    /// added to every score row; a query whose keys are all -inf gets zero probabilities and context.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int heads, int headDim, Span<float> context, int ldContext, Span<float> probs,
        ReadOnlySpan<float> additiveKeyMask = default)
    {
        if (probs.Length < (long)heads * n * n) throw new ArgumentException("probs shorter than heads * n * n");
        for (int h = 0; h < heads; h++)
            ForwardHead(q, k, v, ld, n, headDim, h, context, ldContext, probs.Slice(h * n * n, n * n), additiveKeyMask);
    }

    /// <summary>One head (so (sequence, head) pairs can be spread over threads): writes the head's
    /// columns of context and headProbs ([n, n], this head's slice of the probabilities).</summary>
    public static void ForwardHead(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, Span<float> context, int ldContext, Span<float> headProbs,
        ReadOnlySpan<float> additiveKeyMask = default)
    {
        CheckHead(q.Length, k.Length, v.Length, ld, n, headDim, head, context.Length, ldContext, additiveKeyMask.Length);
        if (headProbs.Length < (long)n * n) throw new ArgumentException("headProbs shorter than n * n");
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: ForwardHeadCore<Vector512<float>, Simd512>(q, k, v, ld, n, headDim, head, context, ldContext, headProbs, additiveKeyMask); break;
            case Isa.Avx2: ForwardHeadCore<Vector256<float>, Simd256>(q, k, v, ld, n, headDim, head, context, ldContext, headProbs, additiveKeyMask); break;
            case Isa.Vector128: ForwardHeadCore<Vector128<float>, Simd128>(q, k, v, ld, n, headDim, head, context, ldContext, headProbs, additiveKeyMask); break;
            default: AttentionReference.ForwardHead(q, k, v, ld, n, headDim, head, context, ldContext, headProbs, additiveKeyMask); break;
        }
    }

    /// <summary>Gradients of <see cref="Forward"/> given its probabilities and dContext. OVERWRITES
    /// the heads' columns of dq, dk and dv (strided like q, k, v with <c>ld</c>; they may be slices
    /// of one fused dQKV buffer). The mask needs no gradient: it is folded into probs.</summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int heads, int headDim, ReadOnlySpan<float> probs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv)
    {
        if (probs.Length < (long)heads * n * n) throw new ArgumentException("probs shorter than heads * n * n");
        for (int h = 0; h < heads; h++)
            BackwardHead(q, k, v, ld, n, headDim, h, probs.Slice(h * n * n, n * n), dContext, ldContext, dq, dk, dv);
    }

    /// <summary>One head of <see cref="Backward"/>.</summary>
    public static void BackwardHead(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, ReadOnlySpan<float> headProbs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv)
    {
        CheckHead(q.Length, k.Length, v.Length, ld, n, headDim, head, dContext.Length, ldContext, 0);
        CheckHead(dq.Length, dk.Length, dv.Length, ld, n, headDim, head, dContext.Length, ldContext, 0);
        if (headProbs.Length < (long)n * n) throw new ArgumentException("headProbs shorter than n * n");
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: BackwardHeadCore<Vector512<float>, Simd512>(q, k, v, ld, n, headDim, head, headProbs, dContext, ldContext, dq, dk, dv); break;
            case Isa.Avx2: BackwardHeadCore<Vector256<float>, Simd256>(q, k, v, ld, n, headDim, head, headProbs, dContext, ldContext, dq, dk, dv); break;
            case Isa.Vector128: BackwardHeadCore<Vector128<float>, Simd128>(q, k, v, ld, n, headDim, head, headProbs, dContext, ldContext, dq, dk, dv); break;
            default: AttentionReference.BackwardHead(q, k, v, ld, n, headDim, head, headProbs, dContext, ldContext, dq, dk, dv); break;
        }
    }

    /// <summary>The token-gate significance: significance[w] = sum over heads h and queries w' != w
    /// of probs[h, w', w], the attention token w receives from the others (length >= n).</summary>
    public static void ReceivedAttention(ReadOnlySpan<float> probs, int n, int heads, Span<float> significance)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(heads);
        if (probs.Length < (long)heads * n * n) throw new ArgumentException("probs shorter than heads * n * n");
        if (significance.Length < n) throw new ArgumentException("significance shorter than n");
        if (IsaSelector.Active == Isa.Scalar) { AttentionReference.ReceivedAttention(probs, n, heads, significance); return; }
        // Column sums of every head's probabilities, minus the diagonal (a token's attention to itself).
        var sig = significance[..n];
        sig.Clear();
        for (int row = 0; row < heads * n; row++) Elementwise.AddInPlace(sig, probs.Slice(row * n, n));
        for (int h = 0; h < heads; h++)
            for (int w = 0; w < n; w++) sig[w] -= probs[(h * n + w) * n + w];
    }

    [ThreadStatic] static float[]? t_keysTransposed;

    /// <summary>Scores are computed from K^T so that a query's score row is a sum of headDim
    /// scaled rows of K^T, accumulated in registers, with no horizontal sums.</summary>
    static void ForwardHeadCore<TV, S>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, Span<float> context, int ldContext, Span<float> headProbs,
        ReadOnlySpan<float> additiveKeyMask) where TV : struct where S : struct, ISimd<TV>
    {
        if (n == 0) return;
        float scale = 1f / MathF.Sqrt(headDim);
        int col = head * headDim;
        int block = 4 * S.Count;

        var keysTransposed = t_keysTransposed;
        if (keysTransposed == null || keysTransposed.Length < headDim * n)
            t_keysTransposed = keysTransposed = new float[Math.Max(headDim * n, 64 * 128)];
        for (int j = 0; j < n; j++)
        {
            var kj = k.Slice(j * ld + col, headDim);
            for (int d = 0; d < headDim; d++) keysTransposed[d * n + j] = kj[d];
        }
        ref float kt = ref MemoryMarshal.GetArrayDataReference(keysTransposed);
        ref float vs = ref MemoryMarshal.GetReference(v);
        Span<float> scaledQuery = headDim <= 1024 ? stackalloc float[headDim] : new float[headDim];

        for (int i = 0; i < n; i++)
        {
            Elementwise.Scale(q.Slice(i * ld + col, headDim), scale, scaledQuery);
            var row = headProbs.Slice(i * n, n);
            ref float pr = ref MemoryMarshal.GetReference(row);
            int j = 0;
            for (; j <= n - block; j += block)
            {
                TV a0 = default, a1 = default, a2 = default, a3 = default;
                for (int d = 0; d < headDim; d++)
                {
                    var qd = S.Splat(scaledQuery[d]);
                    int o = d * n + j;
                    a0 = S.MulAdd(qd, S.Load(ref kt, o), a0);
                    a1 = S.MulAdd(qd, S.Load(ref kt, o + S.Count), a1);
                    a2 = S.MulAdd(qd, S.Load(ref kt, o + 2 * S.Count), a2);
                    a3 = S.MulAdd(qd, S.Load(ref kt, o + 3 * S.Count), a3);
                }
                S.Store(a0, ref pr, j);
                S.Store(a1, ref pr, j + S.Count);
                S.Store(a2, ref pr, j + 2 * S.Count);
                S.Store(a3, ref pr, j + 3 * S.Count);
            }
            for (; j <= n - S.Count; j += S.Count)
            {
                TV a0 = default;
                for (int d = 0; d < headDim; d++) a0 = S.MulAdd(S.Splat(scaledQuery[d]), S.Load(ref kt, d * n + j), a0);
                S.Store(a0, ref pr, j);
            }
            for (; j < n; j++)
            {
                float sum = 0;
                for (int d = 0; d < headDim; d++) sum += scaledQuery[d] * keysTransposed[d * n + j];
                row[j] = sum;
            }

            Softmax.RowCore<TV, S>(row, additiveKeyMask);

            var ci = context.Slice(i * ldContext + col, headDim);
            ref float cr = ref MemoryMarshal.GetReference(ci);
            int d0 = 0;
            for (; d0 <= headDim - block; d0 += block)
            {
                TV a0 = default, a1 = default, a2 = default, a3 = default;
                for (int jj = 0; jj < n; jj++)
                {
                    float p = row[jj];
                    if (p == 0) continue; // masked keys (and pruned tokens) cost nothing
                    var pv = S.Splat(p);
                    int o = jj * ld + col + d0;
                    a0 = S.MulAdd(pv, S.Load(ref vs, o), a0);
                    a1 = S.MulAdd(pv, S.Load(ref vs, o + S.Count), a1);
                    a2 = S.MulAdd(pv, S.Load(ref vs, o + 2 * S.Count), a2);
                    a3 = S.MulAdd(pv, S.Load(ref vs, o + 3 * S.Count), a3);
                }
                S.Store(a0, ref cr, d0);
                S.Store(a1, ref cr, d0 + S.Count);
                S.Store(a2, ref cr, d0 + 2 * S.Count);
                S.Store(a3, ref cr, d0 + 3 * S.Count);
            }
            for (; d0 <= headDim - S.Count; d0 += S.Count)
            {
                TV a0 = default;
                for (int jj = 0; jj < n; jj++) a0 = S.MulAdd(S.Splat(row[jj]), S.Load(ref vs, jj * ld + col + d0), a0);
                S.Store(a0, ref cr, d0);
            }
            for (; d0 < headDim; d0++)
            {
                float sum = 0;
                for (int jj = 0; jj < n; jj++) sum += row[jj] * v[jj * ld + col + d0];
                ci[d0] = sum;
            }
        }
    }

    /// <summary>The reference's loops with vector dots and axpys over headDim.</summary>
    static void BackwardHeadCore<TV, S>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, ReadOnlySpan<float> headProbs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv) where TV : struct where S : struct, ISimd<TV>
    {
        float scale = 1f / MathF.Sqrt(headDim);
        int col = head * headDim;
        for (int j = 0; j < n; j++)
        {
            dk.Slice(j * ld + col, headDim).Clear();
            dv.Slice(j * ld + col, headDim).Clear();
        }
        Span<float> dScores = n <= 1024 ? stackalloc float[n] : new float[n];
        for (int i = 0; i < n; i++)
        {
            var p = headProbs.Slice(i * n, n);
            var dci = dContext.Slice(i * ldContext + col, headDim);
            for (int j = 0; j < n; j++) dScores[j] = Elementwise.DotCore<TV, S>(dci, v.Slice(j * ld + col, headDim));
            float weighted = Elementwise.DotCore<TV, S>(p, dScores);
            var qi = q.Slice(i * ld + col, headDim);
            var dqi = dq.Slice(i * ld + col, headDim);
            dqi.Clear();
            for (int j = 0; j < n; j++)
            {
                if (p[j] == 0) continue;
                float ds = scale * p[j] * (dScores[j] - weighted);
                Elementwise.AxpyCore<TV, S>(ds, k.Slice(j * ld + col, headDim), dqi);
                Elementwise.AxpyCore<TV, S>(ds, qi, dk.Slice(j * ld + col, headDim));
                Elementwise.AxpyCore<TV, S>(p[j], dci, dv.Slice(j * ld + col, headDim));
            }
        }
    }

    static void CheckHead(int qLength, int kLength, int vLength, int ld, int n, int headDim, int head,
        int contextLength, int ldContext, int maskLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        ArgumentOutOfRangeException.ThrowIfNegative(head);
        if (n == 0) return;
        int col = (head + 1) * headDim;
        if (ld < col || ldContext < col) throw new ArgumentException("ld / ldContext smaller than the head's last column");
        long needed = (long)(n - 1) * ld + col;
        if (qLength < needed || kLength < needed || vLength < needed) throw new ArgumentException("q, k or v too short for n rows of stride ld");
        if (contextLength < (long)(n - 1) * ldContext + col) throw new ArgumentException("context too short for n rows of stride ldContext");
        if (maskLength != 0 && maskLength != n) throw new ArgumentException("additiveKeyMask length must equal n");
    }
}
