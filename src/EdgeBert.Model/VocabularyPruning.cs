using System.Buffers;

namespace EdgeBert.Model;

/// <summary>Shrinks a model's vocabulary to the tokens a text sample uses most, so a device ships a fraction of
/// the word-embedding table. WordPiece's greedy longest match over a subset of the vocabulary tokenizes a word
/// exactly as before whenever all of its pieces are kept (no longer kept piece can match where the original
/// did not); any other word splits into smaller kept pieces, because every single-character piece seen in the
/// sample, and those of printable ASCII, are kept.</summary>
public static class VocabularyPruning
{
    /// <summary>How often each token id occurs in the sources, each source's counts divided by its total, so
    /// every source weighs the same however long it is (e.g. a task's training file and a general corpus).
    /// </summary>
    public static double[] Frequencies(BertWordPieceTokenizer tokenizer, IEnumerable<IEnumerable<string>> sources)
    {
        var frequency = new double[tokenizer.VocabSize];
        foreach (var source in sources)
        {
            var counts = new long[tokenizer.VocabSize];
            long total = 0;
            foreach (var line in source)
                foreach (var (_, id) in tokenizer.Tokenize(line)) { counts[id]++; total++; }
            for (int i = 0; i < counts.Length && total > 0; i++) frequency[i] += (double)counts[i] / total;
        }
        return frequency;
    }

    /// <summary>The ids to keep, ascending: the special tokens, the single-character pieces that occur or are
    /// printable ASCII, then the most frequent others (ties: lower id first) up to <paramref name="size"/>.
    /// </summary>
    public static int[] SelectTokens(BertWordPieceTokenizer tokenizer, double[] frequency, int size)
    {
        // A repeated line of vocab.txt is dead (HF gives the token its last id): never keep it.
        bool Live(int id) => tokenizer.TokenToId(tokenizer.Tokens[id]) == id;
        var o = tokenizer.Options;
        var required = new HashSet<int>();
        foreach (var special in new[] { o.UnknownToken, o.SeparatorToken, o.PaddingToken, o.ClassificationToken,
                                        o.MaskToken })
            if (tokenizer.TokenToId(special) is { } id) required.Add(id);
        for (int id = 0; id < tokenizer.VocabSize; id++)
            if (Live(id) && SingleCharacter(tokenizer.Tokens[id]) is { } c
                && (frequency[id] > 0 || c is >= '!' and <= '~'))
                required.Add(id);
        if (size < required.Count)
            throw new ArgumentException($"the vocabulary needs at least {required.Count} tokens (special tokens and "
                + "single characters)", nameof(size));
        var rest = Enumerable.Range(0, tokenizer.VocabSize)
            .Where(id => !required.Contains(id) && frequency[id] > 0 && Live(id))
            .OrderByDescending(id => frequency[id]).ThenBy(id => id)
            .Take(size - required.Count);
        return [.. required.Concat(rest).Order()];
    }

    /// <summary>The character of a one-character piece ("a" or "##a"), or null.</summary>
    static int? SingleCharacter(string token)
    {
        string body = token.StartsWith("##", StringComparison.Ordinal) && token.Length > 2 ? token[2..] : token;
        return System.Text.Rune.DecodeFromUtf16(body, out var rune, out int used) == OperationStatus.Done
            && used == body.Length ? rune.Value : null;
    }

    /// <summary>A checkpoint with only the <paramref name="keptIds"/> (ascending) in its vocabulary and word
    /// embeddings: token keptIds[i] gets id i. The masked-LM head (a row per token) is not pruned: drop it
    /// first.</summary>
    public static BertCheckpoint Prune(BertCheckpoint checkpoint, IReadOnlyList<int> keptIds)
    {
        var tokenizer = checkpoint.RequireTokenizer();
        if (checkpoint.Weights.MlmHead is not null)
            throw new InvalidOperationException("the masked-LM head has a row per token; drop it before pruning");
        for (int i = 0; i < keptIds.Count; i++)
            if (keptIds[i] < 0 || keptIds[i] >= tokenizer.VocabSize || (i > 0 && keptIds[i] <= keptIds[i - 1]))
                throw new ArgumentException("kept ids must ascend within the vocabulary", nameof(keptIds));
        var weights = checkpoint.Weights;
        int hidden = weights.WordEmbeddings.Shape[1];
        var rows = new float[keptIds.Count * hidden];
        for (int i = 0; i < keptIds.Count; i++)
            Array.Copy(weights.WordEmbeddings.Values, (long)keptIds[i] * hidden, rows, (long)i * hidden, hidden);
        weights.WordEmbeddings = new Param([keptIds.Count, hidden], rows);
        var pruned = BertWordPieceTokenizer.FromTokens(keptIds.Select(id => tokenizer.Tokens[id]), tokenizer.Options);
        var config = checkpoint.Config;
        config.VocabSize = keptIds.Count;
        int pad = keptIds.ToList().BinarySearch(config.PadTokenId);
        config.PadTokenId = pad >= 0 ? pad : pruned.PadId;
        return new BertCheckpoint(config, weights, pruned, null, checkpoint.IgnoredTensors);
    }
}
