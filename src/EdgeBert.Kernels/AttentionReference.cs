namespace EdgeBert.Kernels;

/// <summary>Scalar twin of <see cref="Attention"/>, one head at a time.</summary>
internal static class AttentionReference
{
    internal static void ForwardHead(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, Span<float> context, int ldContext, Span<float> headProbs,
        ReadOnlySpan<float> additiveKeyMask)
    {
        float scale = 1f / MathF.Sqrt(headDim);
        int col = head * headDim;
        for (int i = 0; i < n; i++)
        {
            var qi = q.Slice(i * ld + col, headDim);
            var row = headProbs.Slice(i * n, n);
            for (int j = 0; j < n; j++)
                row[j] = scale * ElementwiseReference.Dot(qi, k.Slice(j * ld + col, headDim));
            SoftmaxReference.Row(row, additiveKeyMask);
            var ci = context.Slice(i * ldContext + col, headDim);
            ci.Clear();
            for (int j = 0; j < n; j++)
                ElementwiseReference.Axpy(row[j], v.Slice(j * ld + col, headDim), ci);
        }
    }

    /// <summary>Overwrites the head's columns of dq, dk, dv. With S = scale Q K^T and P = softmax(S):
    /// dV = P^T dC, dP = dC V^T, dS = P (dP - rowsum(P dP)), dQ = scale dS K, dK = scale dS^T Q.</summary>
    internal static void BackwardHead(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld,
        int n, int headDim, int head, ReadOnlySpan<float> headProbs, ReadOnlySpan<float> dContext, int ldContext,
        Span<float> dq, Span<float> dk, Span<float> dv)
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
            float weighted = 0;
            for (int j = 0; j < n; j++)
            {
                dScores[j] = ElementwiseReference.Dot(dci, v.Slice(j * ld + col, headDim));
                weighted += p[j] * dScores[j];
            }
            var qi = q.Slice(i * ld + col, headDim);
            var dqi = dq.Slice(i * ld + col, headDim);
            dqi.Clear();
            for (int j = 0; j < n; j++)
            {
                float ds = scale * p[j] * (dScores[j] - weighted);
                ElementwiseReference.Axpy(ds, k.Slice(j * ld + col, headDim), dqi);
                ElementwiseReference.Axpy(ds, qi, dk.Slice(j * ld + col, headDim));
                ElementwiseReference.Axpy(p[j], dci, dv.Slice(j * ld + col, headDim));
            }
        }
    }
}
