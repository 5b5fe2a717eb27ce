using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>One sequence of token ids; token types default to 0.</summary>
public readonly record struct SequenceInput(int[] InputIds, int[]? TokenTypeIds = null)
{
    public static SequenceInput From(TokenizedText t) => new(t.InputIds, t.TokenTypeIds);
}

/// <summary>What one sequence's forward pass produced. Kept[j] is the number of tokens layer j's
/// feed-forward block ran on; Flops and DenseFlops are exact multiply-add counts.</summary>
public sealed class SequenceResult
{
    public required float[] Logits { get; init; }
    public required int[] Kept { get; init; }
    public required long Flops { get; init; }
    public required long DenseFlops { get; init; }
    /// <summary>Final hidden states of the surviving tokens [rows, hidden], when asked for.</summary>
    public float[]? Hidden { get; init; }
    /// <summary>Original positions of the tokens that entered each layer's feed-forward block, when asked for.</summary>
    public int[][]? Survivors { get; init; }
}

/// <summary>Gated models run gated unless UseGates is false.</summary>
public sealed record RunOptions(bool UseGates = true, bool ReturnHidden = false, bool ReturnSurvivors = false);

/// <summary>The inference engine. Weights are packed once for the GEMM micro-kernels and the plain
/// copies are released. The object is immutable after construction, so many threads can run it at
/// once, each with its own <see cref="InferenceWorkspace"/>.</summary>
public sealed class BertEngine
{
    internal sealed class Layer
    {
        public required PackedWeight Qkv, AttentionOutput, Intermediate, Output;
        public required float[] QkvBias, AttentionOutputBias, IntermediateBias, OutputBias;
        public required float[] Ln1Gamma, Ln1Beta, Ln2Gamma, Ln2Beta;
    }

    internal readonly float[] WordEmbeddings, PositionEmbeddings, TokenTypeEmbeddings, EmbeddingGamma, EmbeddingBeta;
    internal readonly Layer[] Layers;
    internal readonly PackedWeight? Pooler, Classifier;
    internal readonly float[]? PoolerBias, ClassifierBias;
    /// <summary>m_j of METHOD.md point 4, or null for a model without gates.</summary>
    readonly int[]? _gateKeptCounts;

    public BertConfig Config { get; }
    public bool HasGates => _gateKeptCounts is not null;
    public IReadOnlyList<int>? GateKeptCounts => _gateKeptCounts;
    public int Hidden => Config.HiddenSize;
    public int NumLabels => Classifier?.OutFeatures ?? 0;
    /// <summary>The kernel path every forward pass of this engine runs; the weights are packed for it.</summary>
    public Isa Isa { get; }

    /// <summary>Packs <paramref name="weights"/>; with <paramref name="releaseWeights"/> the plain arrays of
    /// packed matrices are dropped as they are packed, so BERT-base never lives twice in memory.</summary>
    public BertEngine(BertConfig config, BertWeights weights, bool releaseWeights = false,
        float gateThreshold = TokenGates.DefaultThreshold, Isa? isa = null)
    {
        Config = config;
        Isa = IsaSelector.Resolve(isa);
        int h = config.HiddenSize;
        if (h % config.NumAttentionHeads != 0)
            throw new InvalidDataException($"hidden_size {h} is not a multiple of num_attention_heads {config.NumAttentionHeads}");
        if (config.HiddenAct is not ("gelu" or "gelu_python"))
            throw new NotSupportedException($"hidden_act '{config.HiddenAct}' is not supported (only the exact erf GELU, 'gelu')");

        WordEmbeddings = weights.WordEmbeddings.Values;
        PositionEmbeddings = weights.PositionEmbeddings.Values;
        TokenTypeEmbeddings = weights.TokenTypeEmbeddings.Values;
        EmbeddingGamma = weights.EmbeddingLayerNormWeight.Values;
        EmbeddingBeta = weights.EmbeddingLayerNormBias.Values;

        Layers = new Layer[weights.Layers.Length];
        for (int j = 0; j < Layers.Length; j++)
        {
            var l = weights.Layers[j];
            // Q, K and V share their input: one fused [3H, H] product gives rows [q | k | v].
            var qkv = new float[3L * h * h];
            l.QueryWeight.Values.CopyTo(qkv, 0);
            l.KeyWeight.Values.CopyTo(qkv, h * h);
            l.ValueWeight.Values.CopyTo(qkv, 2 * h * h);
            float[] qkvBias = [.. l.QueryBias.Values, .. l.KeyBias.Values, .. l.ValueBias.Values];
            Layers[j] = new Layer
            {
                Qkv = PackedWeight.FromLinear(qkv, 3 * h, h, Isa),
                QkvBias = qkvBias,
                AttentionOutput = Pack(l.AttentionOutputWeight, h, h, releaseWeights),
                AttentionOutputBias = l.AttentionOutputBias.Values,
                Ln1Gamma = l.AttentionLayerNormWeight.Values, Ln1Beta = l.AttentionLayerNormBias.Values,
                Intermediate = Pack(l.IntermediateWeight, config.IntermediateSize, h, releaseWeights),
                IntermediateBias = l.IntermediateBias.Values,
                Output = Pack(l.OutputWeight, h, config.IntermediateSize, releaseWeights),
                OutputBias = l.OutputBias.Values,
                Ln2Gamma = l.OutputLayerNormWeight.Values, Ln2Beta = l.OutputLayerNormBias.Values,
            };
            if (releaseWeights) l.QueryWeight.Data = l.KeyWeight.Data = l.ValueWeight.Data = null;
        }
        if (weights.PoolerWeight is not null && weights.PoolerBias is not null)
        {
            Pooler = Pack(weights.PoolerWeight, h, h, releaseWeights);
            PoolerBias = weights.PoolerBias.Values;
        }
        if (weights.ClassifierWeight is not null && weights.ClassifierBias is not null)
        {
            if (Pooler is null) throw new InvalidDataException("the checkpoint has a classifier but no pooler");
            Classifier = Pack(weights.ClassifierWeight, weights.ClassifierWeight.Shape[0], h, releaseWeights);
            ClassifierBias = weights.ClassifierBias.Values;
        }
        if (weights.HasGates)
            _gateKeptCounts = TokenGates.KeptCounts(weights.Layers.Select(l => l.Gate?.Values).ToArray(), gateThreshold);
    }

    public static BertEngine Load(BertCheckpoint checkpoint, float gateThreshold = TokenGates.DefaultThreshold,
        Isa? isa = null) =>
        new(checkpoint.Config, checkpoint.Weights, releaseWeights: true, gateThreshold, isa);

    PackedWeight Pack(Param p, int outFeatures, int inFeatures, bool release)
    {
        var packed = PackedWeight.FromLinear(p.Values, outFeatures, inFeatures, Isa);
        if (release) p.Data = null;
        return packed;
    }

    /// <summary>The tokens layer j's FFN runs on for a sequence of n tokens.</summary>
    public int KeptAt(int layer, int n, bool useGates) =>
        useGates && _gateKeptCounts is not null ? Math.Min(n, _gateKeptCounts[layer]) : n;

    /// <summary>Runs a batch. Sequences are packed into one token buffer (no padding); each keeps its
    /// own length through the layers. Throws ArgumentException naming the sequence on bad ids.</summary>
    public SequenceResult[] Run(IReadOnlyList<SequenceInput> batch, InferenceWorkspace workspace, RunOptions? options = null, WorkerPool? pool = null)
    {
        Validate(batch);
        return workspace.Run(this, batch, options ?? new RunOptions(), pool ?? WorkerPool.Single);
    }

    public SequenceResult[] Run(IReadOnlyList<SequenceInput> batch, RunOptions? options = null, WorkerPool? pool = null) =>
        Run(batch, new InferenceWorkspace(), options, pool);

    void Validate(IReadOnlyList<SequenceInput> batch)
    {
        for (int s = 0; s < batch.Count; s++)
        {
            try { Validate(batch[s]); }
            catch (ArgumentException e) { throw new ArgumentException($"sequence {s}: {e.Message}", e); }
        }
    }

    /// <summary>Checks one sequence against the model: length, vocabulary, token types.</summary>
    public void Validate(SequenceInput sequence)
    {
        int maxLength = Config.MaxPositionEmbeddings;
        var ids = sequence.InputIds ?? throw new ArgumentException("input_ids missing");
        if (ids.Length == 0) throw new ArgumentException("input_ids is empty");
        if (ids.Length > maxLength)
            throw new ArgumentException($"{ids.Length} tokens, longer than max_position_embeddings {maxLength}");
        foreach (int id in ids)
            if ((uint)id >= (uint)Config.VocabSize)
                throw new ArgumentException($"input id {id} is outside the vocabulary [0, {Config.VocabSize})");
        if (sequence.TokenTypeIds is { } types)
        {
            if (types.Length != ids.Length)
                throw new ArgumentException($"{types.Length} token_type_ids for {ids.Length} input_ids");
            foreach (int t in types)
                if ((uint)t >= (uint)Config.TypeVocabSize)
                    throw new ArgumentException($"token type {t} is outside [0, {Config.TypeVocabSize})");
        }
    }

    /// <summary>Dense and gated multiply-add counts for a sequence of n tokens.</summary>
    public (long Gated, long Dense) CountFlops(int n, ReadOnlySpan<int> kept) =>
        (FlopCounter.MultiplyAdds(Hidden, Config.IntermediateSize, NumLabels, n, kept),
         FlopCounter.DenseMultiplyAdds(Hidden, Config.IntermediateSize, NumLabels, Layers.Length, n));
}
