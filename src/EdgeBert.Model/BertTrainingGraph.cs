using EdgeBert.Autograd;
using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>How a training forward pass runs.</summary>
public sealed record TrainingForwardOptions
{
    /// <summary>Dropout on (hidden_dropout_prob of the config, or <see cref="DropoutProbability"/>).</summary>
    public bool Training { get; init; }
    /// <summary>Probability of zeroing an activation in dropout (0: no dropout).</summary>
    public float DropoutProbability { get; init; } = 0.1f;
    /// <summary>The dropout masks' random source.</summary>
    public Rng? Rng { get; init; }
    /// <summary>Scale tokens by their rank's gate (METHOD.md point 3, "soft"); off for dense training.</summary>
    public bool UseGates { get; init; }
}

/// <summary>What a training forward pass produced: the logits [B, C] (or the last hidden states when the
/// model has no classifier) and, per gated layer, the rank of every token.</summary>
public sealed class TrainingForwardResult
{
    /// <summary>The logits (or MLM scores) [sequences or tokens, outputs].</summary>
    public required Tensor Output { get; init; }
    /// <summary>The packed batch the forward pass ran on.</summary>
    public required SequenceBatch Batch { get; init; }
    /// <summary>Per gated layer, the rank of every token row (empty without gates).</summary>
    public required IReadOnlyList<int[]> Ranks { get; init; }
}

/// <summary>The training graph of BERT for sequence classification and regression, over the same
/// parameter arrays as <see cref="BertWeights"/> (tensors wrap them, so an optimizer step updates the
/// checkpoint in place). Batches are packed without padding, as in the inference engine.</summary>
public sealed class BertTrainingGraph
{
    sealed record LayerTensors(
        Tensor Query, Tensor QueryBias, Tensor Key, Tensor KeyBias, Tensor Value, Tensor ValueBias,
        Tensor AttentionOutput, Tensor AttentionOutputBias, Tensor Ln1Gamma, Tensor Ln1Beta,
        Tensor Intermediate, Tensor IntermediateBias, Tensor Output, Tensor OutputBias, Tensor Ln2Gamma, Tensor Ln2Beta,
        Tensor? Gate);

    readonly Tensor _word, _position, _tokenType, _embeddingGamma, _embeddingBeta;
    readonly LayerTensors[] _layers;
    readonly Tensor? _pooler, _poolerBias, _classifier, _classifierBias;
    readonly float _eps;
    readonly int _heads;

    /// <summary>The model's configuration.</summary>
    public BertConfig Config { get; }
    /// <summary>The parameters, trained in place.</summary>
    public BertWeights Weights { get; }
    /// <summary>Every trainable tensor under its HuggingFace name.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; }
    /// <summary>The gate vectors g_j (empty for a dense model).</summary>
    public IReadOnlyList<Tensor> Gates { get; }

    /// <summary>A training graph over <paramref name="weights"/> (shared, not copied).</summary>
    public BertTrainingGraph(BertConfig config, BertWeights weights)
    {
        Config = config;
        Weights = weights;
        _eps = (float)config.LayerNormEps;
        _heads = config.NumAttentionHeads;
        var byParam = new Dictionary<Param, Tensor>(ReferenceEqualityComparer.Instance);
        var named = new List<(string, Tensor)>();
        foreach (var (name, p) in weights.Named())
        {
            var t = Tensor.Parameter(name, p.Values, p.Shape);
            byParam[p] = t;
            named.Add((name, t));
        }
        Parameters = named;
        Tensor T(Param p) => byParam[p];
        Tensor? TOrNull(Param? p) => p is null ? null : byParam[p];

        _word = T(weights.WordEmbeddings); _position = T(weights.PositionEmbeddings);
        _tokenType = T(weights.TokenTypeEmbeddings);
        _embeddingGamma = T(weights.EmbeddingLayerNormWeight); _embeddingBeta = T(weights.EmbeddingLayerNormBias);
        _layers = weights.Layers.Select(l => new LayerTensors(
            T(l.QueryWeight), T(l.QueryBias), T(l.KeyWeight), T(l.KeyBias), T(l.ValueWeight), T(l.ValueBias),
            T(l.AttentionOutputWeight), T(l.AttentionOutputBias), T(l.AttentionLayerNormWeight),
            T(l.AttentionLayerNormBias),
            T(l.IntermediateWeight), T(l.IntermediateBias), T(l.OutputWeight), T(l.OutputBias),
            T(l.OutputLayerNormWeight), T(l.OutputLayerNormBias), TOrNull(l.Gate))).ToArray();
        _pooler = TOrNull(weights.PoolerWeight); _poolerBias = TOrNull(weights.PoolerBias);
        _classifier = TOrNull(weights.ClassifierWeight); _classifierBias = TOrNull(weights.ClassifierBias);
        Gates = _layers.Where(l => l.Gate is not null).Select(l => l.Gate!).ToArray();
    }

    /// <summary>Forward pass of a packed batch on <paramref name="tape"/>. With gates, each layer ranks its
    /// tokens by the attention they receive from the other live tokens, scales the token at rank k by
    /// g_j[k], and masks tokens whose gate is exactly 0 as keys of every later layer (METHOD.md point 8),
    /// so with 0/1 gates this pass equals the engine's hard, compacted one.</summary>
    public TrainingForwardResult Forward(Tape tape, IReadOnlyList<SequenceInput> inputs, TrainingForwardOptions options)
    {
        var lengths = inputs.Select(s => s.InputIds.Length).ToArray();
        var batch = new SequenceBatch(lengths);
        int total = batch.TotalTokens;
        var ids = new int[total];
        var positions = new int[total];
        var types = new int[total];
        for (int s = 0, row = 0; s < inputs.Count; s++)
            for (int p = 0; p < lengths[s]; p++, row++)
            {
                ids[row] = inputs[s].InputIds[p];
                positions[row] = p;
                types[row] = inputs[s].TokenTypeIds?[p] ?? 0;
            }
        if (options.Training && options.Rng is null) throw new ArgumentException("training with dropout needs an Rng");
        float dropout = options.Training ? options.DropoutProbability : 0f;
        var rng = options.Rng ?? new Rng(0);

        var x = tape.Add(tape.Add(tape.EmbeddingGather(_word, ids), tape.EmbeddingGather(_position, positions)),
            tape.EmbeddingGather(_tokenType, types));
        x = tape.Dropout(tape.LayerNorm(x, _embeddingGamma, _embeddingBeta, _eps), dropout, rng, options.Training);

        bool gated = options.UseGates && Gates.Count > 0;
        float[]? keyMask = gated ? new float[total] : null;
        var allRanks = new List<int[]>();
        foreach (var l in _layers)
        {
            var q = tape.Linear(x, l.Query, l.QueryBias);
            var k = tape.Linear(x, l.Key, l.KeyBias);
            var v = tape.Linear(x, l.Value, l.ValueBias);
            var attention = tape.MultiHeadAttention(q, k, v, batch, _heads, keyMask);
            var a = tape.Dropout(tape.Linear(attention.Context, l.AttentionOutput, l.AttentionOutputBias), dropout, rng,
                options.Training);
            a = tape.LayerNorm(tape.Add(a, x), l.Ln1Gamma, l.Ln1Beta, _eps);
            if (gated && l.Gate is { } gate)
            {
                var ranks = new int[total];
                RankTokens(attention.Probabilities, batch, keyMask!, ranks);
                allRanks.Add(ranks);
                a = tape.GateScale(a, gate, ranks);
                GateOps.MaskGatedOutKeys(keyMask, gate.Data, ranks);
            }
            var f = tape.Linear(tape.Gelu(tape.Linear(a, l.Intermediate, l.IntermediateBias)), l.Output, l.OutputBias);
            x = tape.LayerNorm(tape.Add(tape.Dropout(f, dropout, rng, options.Training), a), l.Ln2Gamma, l.Ln2Beta,
                _eps);
        }

        if (_classifier is null || _pooler is null)
            return new TrainingForwardResult { Output = x, Batch = batch, Ranks = allRanks };
        var cls = tape.SelectRows(x, batch.FirstTokenRows());
        var pooled = tape.Dropout(tape.Tanh(tape.Linear(cls, _pooler, _poolerBias)), dropout, rng, options.Training);
        return new TrainingForwardResult { Output = tape.Linear(pooled, _classifier, _classifierBias), Batch = batch,
            Ranks = allRanks };
    }

    /// <summary>Rank of every token within its sequence by significance (METHOD.md point 2), counting only
    /// live queries: a token masked out earlier is gone in the hard pass, so its attention must not count.
    /// Masked tokens receive no attention and so rank after every live token.</summary>
    void RankTokens(float[][] probabilities, SequenceBatch batch, float[] keyMask, int[] ranks)
    {
        int longest = 0;
        for (int s = 0; s < batch.Count; s++) longest = Math.Max(longest, batch.Length(s));
        var receivedPerHead = new float[_heads * longest];
        var significance = new float[longest];
        var order = new int[longest];
        var keys = new ulong[longest];
        for (int s = 0; s < batch.Count; s++)
        {
            int n = batch.Length(s), start = batch.Offset(s);
            var mask = keyMask.AsSpan(start, n);
            for (int h = 0; h < _heads; h++)
                TokenGateEvaluator.ReceivedAttention(probabilities[s].AsSpan(h * n * n, n * n), n,
                    receivedPerHead.AsSpan(h * n, n), mask);
            var sig = significance.AsSpan(0, n);
            TokenGateEvaluator.Significance(receivedPerHead, _heads, n, sig);
            TokenGateEvaluator.Rank(sig, order.AsSpan(0, n), keys);
            for (int r = 0; r < n; r++) ranks[start + order[r]] = r;
        }
    }

    /// <summary>Masked-language-model loss (cross-entropy over the masked rows only) with the HF
    /// pre-training head: LayerNorm(gelu(dense(h))) then a decoder tied to the word embeddings, plus
    /// cls.predictions.bias. Also returns how many masked tokens were predicted right.</summary>
    public (Tensor Loss, int Correct) MaskedLmLoss(Tape tape, Tensor hidden, int[] maskedRows, int[] targetIds)
    {
        var head = Weights.MlmHead
            ?? throw new InvalidOperationException("the model has no masked-LM head (cls.predictions)");
        Tensor Find(Param p) => Parameters.First(t => ReferenceEquals(t.Tensor.Data, p.Values)).Tensor;
        var selected = tape.SelectRows(hidden, maskedRows);
        var transformed = tape.LayerNorm(
            tape.Gelu(tape.Linear(selected, Find(head.TransformWeight), Find(head.TransformBias))),
            Find(head.TransformLayerNormWeight), Find(head.TransformLayerNormBias), _eps);
        var logits = tape.Linear(transformed, _word, Find(head.DecoderBias));
        int vocab = _word.Rows;
        var right = new bool[targetIds.Length];
        ParallelChunks.Run(tape.Pool, targetIds.Length, ParallelChunks.RowGrain(vocab), (_, start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var row = logits.Data.AsSpan(i * vocab, vocab);
                int best = 0;
                for (int v = 1; v < vocab; v++) if (row[v] > row[best]) best = v;
                right[i] = best == targetIds[i];
            }
        });
        return (tape.CrossEntropy(logits, targetIds), right.Count(r => r));
    }

    /// <summary>Task loss (cross-entropy, or MSE for regression) plus lambda R_l1 + mu R_bimodal when
    /// the gates train (METHOD.md point 5). <paramref name="targetDistributions"/> ([B, labels], rows summing
    /// to 1) replaces the labels of a classification, e.g. to distil a teacher's probabilities.</summary>
    public Tensor Loss(Tape tape, Tensor logits, int[]? labels, float[]? scores, float lambda = 0, float mu = 0,
        float[]? targetDistributions = null)
    {
        var loss = Config.IsRegression
            ? tape.MeanSquaredError(logits, scores ?? throw new ArgumentException("regression needs scores"))
            : targetDistributions is not null ? tape.CrossEntropy(logits, targetDistributions)
            : tape.CrossEntropy(logits, labels ?? throw new ArgumentException("classification needs labels"));
        if (Gates.Count > 0 && (lambda != 0 || mu != 0))
        {
            if (lambda != 0) loss = tape.Add(loss, tape.Scale(tape.GateL1(Gates), lambda));
            if (mu != 0) loss = tape.Add(loss, tape.Scale(tape.GateBimodal(Gates), mu));
        }
        return loss;
    }
}
