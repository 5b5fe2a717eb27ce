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
        AttentionReference.ForwardHead(q, k, v, ld, n, headDim, head, context, ldContext, headProbs, additiveKeyMask);
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
        AttentionReference.BackwardHead(q, k, v, ld, n, headDim, head, headProbs, dContext, ldContext, dq, dk, dv);
    }

    /// <summary>The token-gate significance: significance[w] = sum over heads h and queries w' != w
    /// of probs[h, w', w], the attention token w receives from the others (length >= n).</summary>
    public static void ReceivedAttention(ReadOnlySpan<float> probs, int n, int heads, Span<float> significance)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(heads);
        if (probs.Length < (long)heads * n * n) throw new ArgumentException("probs shorter than heads * n * n");
        if (significance.Length < n) throw new ArgumentException("significance shorter than n");
        AttentionReference.ReceivedAttention(probs, n, heads, significance);
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
