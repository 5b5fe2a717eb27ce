namespace EdgeBert.Model;

/// <summary>How a sequence's last hidden states become one vector.</summary>
public enum Pooling
{
    /// <summary>The mean of every token's last hidden state.</summary>
    Mean,
    /// <summary>The [CLS] token's last hidden state.</summary>
    Cls,
}

/// <summary>Sentence embeddings as sentence-transformers computes them: the mean of the last hidden states over
/// the tokens (or the [CLS] token's state), then divided by its L2 norm.</summary>
public static class SentenceEmbedding
{
    /// <summary>The config.json key with the pooling the model was trained with ("mean" or "cls"), written by
    /// `edgebert import --pooling` (sentence-transformers keeps it in a separate 1_Pooling/config.json).</summary>
    public const string PoolingKey = "sentence_pooling";

    /// <summary>Reads "mean" or "cls".</summary>
    public static Pooling ParsePooling(string text) => text switch
    {
        "mean" => Pooling.Mean,
        "cls" => Pooling.Cls,
        _ => throw new ArgumentException($"pooling must be mean or cls, got '{text}'"),
    };

    /// <summary>The pooling config.json names, else mean (all-MiniLM-L6-v2's and most sentence-transformers').
    /// </summary>
    public static Pooling DefaultPooling(BertConfig config) =>
        config.Extra[PoolingKey] is { } node ? ParsePooling(node.ToString()) : Pooling.Mean;

    /// <summary>One sequence's embedding from its last hidden states.</summary>
    /// <param name="hidden">[tokens, width] row-major: every token of one sequence (no padding).</param>
    /// <param name="width">The hidden size.</param>
    /// <param name="pooling">Mean over the tokens, or the first ([CLS]) token.</param>
    /// <param name="normalize">Whether to divide by the L2 norm.</param>
    public static float[] Pool(ReadOnlySpan<float> hidden, int width, Pooling pooling, bool normalize)
    {
        if (width <= 0 || hidden.Length == 0 || hidden.Length % width != 0)
            throw new ArgumentException($"{hidden.Length} hidden values are no whole number of rows of {width}");
        int rows = hidden.Length / width;
        // Summed in double: a 512-token mean in float loses digits the cosine comparisons care about.
        var sum = new double[width];
        for (int r = 0; r < (pooling == Pooling.Cls ? 1 : rows); r++)
            for (int i = 0; i < width; i++) sum[i] += hidden[r * width + i];
        double divisor = pooling == Pooling.Cls ? 1 : rows;
        if (normalize)
        {
            double norm = Math.Sqrt(sum.Sum(v => v * v));
            // sentence-transformers' Normalize clamps the norm at 1e-12 (F.normalize's eps).
            divisor = Math.Max(norm, 1e-12 * divisor);
        }
        return sum.Select(v => (float)(v / divisor)).ToArray();
    }
}
