using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>Multi-head self-attention for one sequence: P = softmax(Q K^T / sqrt(headDim) + mask),
/// context = P V. Q, K and V rows are tokens with row stride <c>ld</c>; head h occupies columns
/// h*headDim .. (h+1)*headDim-1 (so q, k, v may be slices of one fused QKV buffer).
/// Probabilities are [heads, n, n] row-major, row = query, column = key.
/// Runs the given path (null: <see cref="IsaSelector.Default"/>).</summary>
public static class Attention
{
    /// <summary>All heads. context is [n, heads*headDim] with stride ldContext; probs (length
    /// heads*n*n) is always written. additiveKeyMask (length n, 0 or a large negative / -inf) is
    /// added to every score row; a query whose keys are all -inf gets zero probabilities and context.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int heads, int headDim, Span<float> context, int ldContext, Span<float> probs,
        ReadOnlySpan<float> additiveKeyMask = default, Isa? isa = null)
    {
        if (probs.Length < (long)heads * n * n) throw new ArgumentException("probs shorter than heads * n * n");
        for (int h = 0; h < heads; h++)
        {
            ForwardHead(q, k, v, ld, n, headDim, h, context, ldContext, probs.Slice(h * n * n, n * n),
                additiveKeyMask, isa);
        }
    }

    /// <summary>One head (so (sequence, head) pairs can be spread over threads): writes the head's
    /// columns of context and headProbs ([n, n], this head's slice of the probabilities).</summary>
    public static void ForwardHead(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, Span<float> context, int ldContext, Span<float> headProbs,
        ReadOnlySpan<float> additiveKeyMask = default, Isa? isa = null)
    {
        CheckHead(q.Length, k.Length, v.Length, ld, n, headDim, head, context.Length, ldContext,
            additiveKeyMask.Length);
        if (headProbs.Length < (long)n * n) throw new ArgumentException("headProbs shorter than n * n");
        var work = new ForwardHeadWork(q, k, v, ld, n, headDim, head, context, ldContext, headProbs, additiveKeyMask);
        IsaDispatch.Run(isa, ref work);
    }

    /// <summary>Gradients of <see cref="Forward"/> given its probabilities and dContext. OVERWRITES
    /// the heads' columns of dq, dk and dv (strided like q, k, v with <c>ld</c>; they may be slices
    /// of one fused dQKV buffer). The mask needs no gradient: it is folded into probs.</summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int heads, int headDim, ReadOnlySpan<float> probs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv, Isa? isa = null)
    {
        if (probs.Length < (long)heads * n * n) throw new ArgumentException("probs shorter than heads * n * n");
        for (int h = 0; h < heads; h++)
        {
            BackwardHead(q, k, v, ld, n, headDim, h, probs.Slice(h * n * n, n * n), dContext, ldContext,
                dq, dk, dv, isa);
        }
    }

    /// <summary>One head of <see cref="Backward"/>.</summary>
    public static void BackwardHead(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, ReadOnlySpan<float> headProbs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv, Isa? isa = null)
    {
        CheckHead(q.Length, k.Length, v.Length, ld, n, headDim, head, dContext.Length, ldContext, 0);
        CheckHead(dq.Length, dk.Length, dv.Length, ld, n, headDim, head, dContext.Length, ldContext, 0);
        if (headProbs.Length < (long)n * n) throw new ArgumentException("headProbs shorter than n * n");
        var work = new BackwardHeadWork(q, k, v, ld, n, headDim, head, headProbs, dContext, ldContext, dq, dk, dv);
        IsaDispatch.Run(isa, ref work);
    }

    /// <summary>One <see cref="ForwardHead"/> call's arguments, for <see cref="IsaDispatch"/>.</summary>
    ref struct ForwardHeadWork(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, Span<float> context, int ldContext, Span<float> headProbs,
        ReadOnlySpan<float> additiveKeyMask) : IIsaWork
    {
        readonly ReadOnlySpan<float> _q = q, _k = k, _v = v, _additiveKeyMask = additiveKeyMask;
        readonly Span<float> _context = context, _headProbs = headProbs;

        public readonly void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV> =>
            ForwardHeadCore<TV, S>(_q, _k, _v, ld, n, headDim, head, _context, ldContext, _headProbs, _additiveKeyMask);
        public readonly void RunScalar() => AttentionReference.ForwardHead(_q, _k, _v, ld, n, headDim, head,
            _context, ldContext, _headProbs, _additiveKeyMask);
    }

    /// <summary>One <see cref="BackwardHead"/> call's arguments, for <see cref="IsaDispatch"/>.</summary>
    ref struct BackwardHeadWork(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, ReadOnlySpan<float> headProbs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv) : IIsaWork
    {
        readonly ReadOnlySpan<float> _q = q, _k = k, _v = v, _headProbs = headProbs, _dContext = dContext;
        readonly Span<float> _dq = dq, _dk = dk, _dv = dv;

        public readonly void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV> =>
            BackwardHeadCore<TV, S>(_q, _k, _v, ld, n, headDim, head, _headProbs, _dContext, ldContext,
                _dq, _dk, _dv);
        public readonly void RunScalar() => AttentionReference.BackwardHead(_q, _k, _v, ld, n, headDim, head,
            _headProbs, _dContext, ldContext, _dq, _dk, _dv);
    }

    // Per-thread scratch, grown to the largest head seen: K^T or V^T (headDim x stride) and scores
    // or their gradients (n x stride), with stride = n rounded up to whole vectors.
    [ThreadStatic] static AlignedBuffer? t_transposed;
    [ThreadStatic] static AlignedBuffer? t_scores;

    /// <summary>S = Q (scale K)^T as a product against K^T (so score rows are vector stores), softmax
    /// per row, then context = P V; both products as register-blocked tiles (<see cref="AttentionProduct"/>).</summary>
    static unsafe void ForwardHeadCore<TV, S>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        int ld, int n, int headDim, int head, Span<float> context, int ldContext, Span<float> headProbs,
        ReadOnlySpan<float> additiveKeyMask) where TV : struct where S : struct, ISimd<TV>
    {
        if (n == 0) return;
        float scale = 1f / MathF.Sqrt(headDim);
        int col = head * headDim;
        int stride = (n + S.Count - 1) / S.Count * S.Count;
        // Whole vectors of keys: the scores go straight into the probabilities.
        bool direct = stride == n;
        var keysTransposed = Scratch(ref t_transposed, headDim * stride);
        var scores = direct ? default : Scratch(ref t_scores, n * stride);
        fixed (float* pq = q, pk = k, pv = v, pc = context, pp = headProbs, pkt = keysTransposed, ps = scores)
        {
            Transpose(pk + col, ld, n, headDim, scale, pkt, stride);
            AttentionProduct.Multiply<TV, S>(n, stride, headDim, pq + col, ld, false, pkt, stride, direct ? pp : ps,
                stride);
            for (int i = 0; i < n; i++)
            {
                var row = headProbs.Slice(i * n, n);
                if (!direct) new ReadOnlySpan<float>(ps + (nint)i * stride, n).CopyTo(row);
                Softmax.RowCore<TV, S>(row, additiveKeyMask);
            }
            AttentionProduct.Multiply<TV, S>(n, headDim, n, pp, n, false, pv + col, ld, pc + col, ldContext);
        }
    }

    /// <summary>With S = scale Q K^T and P = softmax(S), as products: dP = dC V^T, dS = scale P (dP - rowsum(P dP)),
    /// dQ = dS K, dK = dS^T Q, dV = P^T dC.</summary>
    static unsafe void BackwardHeadCore<TV, S>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        int ld, int n, int headDim, int head, ReadOnlySpan<float> headProbs, ReadOnlySpan<float> dContext,
        int ldContext, Span<float> dq, Span<float> dk, Span<float> dv) where TV : struct where S : struct, ISimd<TV>
    {
        if (n == 0) return;
        float scale = 1f / MathF.Sqrt(headDim);
        int col = head * headDim;
        int stride = (n + S.Count - 1) / S.Count * S.Count;
        var valuesTransposed = Scratch(ref t_transposed, headDim * stride);
        var dScores = Scratch(ref t_scores, n * stride);
        fixed (float* pq = q, pk = k, pv = v, pp = headProbs, pdc = dContext, pdq = dq, pdk = dk, pdv = dv,
            pvt = valuesTransposed, pds = dScores)
        {
            Transpose(pv + col, ld, n, headDim, 1f, pvt, stride);
            AttentionProduct.Multiply<TV, S>(n, stride, headDim, pdc + col, ldContext, false, pvt, stride, pds, stride);
            var scaleSplat = S.Splat(scale);
            int whole = n - n % S.Count;
            for (int i = 0; i < n; i++)
            {
                float* p = pp + (nint)i * n, ds = pds + (nint)i * stride;
                float weighted = Elementwise.DotCore<TV, S>(new ReadOnlySpan<float>(p, n),
                    new ReadOnlySpan<float>(ds, n));
                var weightedSplat = S.Splat(weighted);
                int j = 0;
                for (; j < whole; j += S.Count)
                {
                    var scaledProbs = S.Multiply(scaleSplat, S.Load(ref *p, j));
                    S.Store(S.Multiply(scaledProbs, S.Subtract(S.Load(ref *ds, j), weightedSplat)), ref *ds, j);
                }
                for (; j < n; j++) ds[j] = scale * p[j] * (ds[j] - weighted);
            }
            AttentionProduct.Multiply<TV, S>(n, headDim, n, pds, stride, false, pk + col, ld, pdq + col, ld);
            AttentionProduct.Multiply<TV, S>(n, headDim, n, pds, stride, true, pq + col, ld, pdk + col, ld);
            AttentionProduct.Multiply<TV, S>(n, headDim, n, pp, n, true, pdc + col, ldContext, pdv + col, ld);
        }
    }

    /// <summary>Per-thread scratch, grown at least to a 128-token head at once.</summary>
    static Span<float> Scratch(ref AlignedBuffer? slot, int length) =>
        AlignedBuffer.Scratch(ref slot, Math.Max(length, 64 * 128));

    /// <summary>dst[d, j] = scale * src[j, d] for n rows of headDim values; columns n..stride-1 are zeroed
    /// so the products may run whole vectors past the last key. 8 x 8 blocks in registers where AVX is there
    /// (the scalar strided copy was a quarter of attention's time at BERT-base batch 8).</summary>
    static unsafe void Transpose(float* src, int ld, int n, int headDim, float scale, float* dst, int stride)
    {
        int j = 0;
        if (Avx.IsSupported)
        {
            var scaleSplat = Vector256.Create(scale);
            for (; j + 8 <= n; j += 8)
            {
                int d = 0;
                for (; d + 8 <= headDim; d += 8)
                    Transpose8.Block(src + (nint)j * ld + d, ld, dst + (nint)d * stride + j, stride, scaleSplat);
                for (; d < headDim; d++)
                    for (int r = j; r < j + 8; r++) dst[(nint)d * stride + r] = scale * src[(nint)r * ld + d];
            }
        }
        for (; j < n; j++)
        {
            float* row = src + (nint)j * ld;
            for (int d = 0; d < headDim; d++) dst[(nint)d * stride + j] = scale * row[d];
        }
        for (int d = 0; d < headDim; d++)
            for (j = n; j < stride; j++) dst[(nint)d * stride + j] = 0;
    }

    static void CheckHead(int qLength, int kLength, int vLength, int ld, int n, int headDim, int head,
        int contextLength, int ldContext, int maskLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        ArgumentOutOfRangeException.ThrowIfNegative(head);
        if (n == 0) return;
        int col = (head + 1) * headDim;
        if (ld < col || ldContext < col)
            throw new ArgumentException("ld / ldContext smaller than the head's last column");
        long needed = (long)(n - 1) * ld + col;
        if (qLength < needed || kLength < needed || vLength < needed)
            throw new ArgumentException("q, k or v too short for n rows of stride ld");
        if (contextLength < (long)(n - 1) * ldContext + col)
            throw new ArgumentException("context too short for n rows of stride ldContext");
        if (maskLength != 0 && maskLength != n) throw new ArgumentException("additiveKeyMask length must equal n");
    }
}
