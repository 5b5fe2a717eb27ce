namespace EdgeBert.Model;

/// <summary>Exact multiply-add counts of one sequence's forward pass (METHOD.md point 9).
/// Embeddings are a gather and two adds per element: no multiply-adds. LayerNorm, softmax and
/// activations are not multiply-adds of a matrix product and are not counted.</summary>
public static class FlopCounter
{
    /// <summary>keptPerLayer[j] = tokens layer j's feed-forward block ran on; the attention block of
    /// layer j runs on the tokens the previous layer kept (layer 0: all n).</summary>
    public static long MultiplyAdds(int hidden, int intermediate, int numLabels, int n, ReadOnlySpan<int> keptPerLayer)
    {
        long h = hidden, total = 0, tokensIn = n;
        foreach (int kept in keptPerLayer)
        {
            total += tokensIn * h * 3 * h;            // Q, K, V projections
            total += 2 * tokensIn * tokensIn * h;     // scores Q K^T and context P V over all heads
            total += tokensIn * h * h;                // attention output projection
            total += 2L * kept * h * intermediate;    // FFN up and down projections
            tokensIn = kept;
        }
        total += h * h;                               // pooler on [CLS]
        total += h * numLabels;                       // classifier
        return total;
    }

    /// <summary>The same count with every layer running on all n tokens.</summary>
    public static long DenseMultiplyAdds(int hidden, int intermediate, int numLabels, int numLayers, int n)
    {
        Span<int> all = numLayers <= 64 ? stackalloc int[numLayers] : new int[numLayers];
        all.Fill(n);
        return MultiplyAdds(hidden, intermediate, numLabels, n, all);
    }
}
