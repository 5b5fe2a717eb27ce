using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>One sequence of token ids; token types default to 0.</summary>
public readonly record struct SequenceInput(int[] InputIds, int[]? TokenTypeIds = null)
{
    /// <summary>The ids and token types of a tokenized text.</summary>
    public static SequenceInput From(TokenizedText t) => new(t.InputIds, t.TokenTypeIds);
}

/// <summary>What one sequence's forward pass produced. Kept[j] is the number of tokens layer j's
/// feed-forward block ran on; Flops and DenseFlops are exact multiply-add counts.</summary>
public sealed class SequenceResult
{
    /// <summary>The classifier's outputs (empty without a classifier head).</summary>
    public required float[] Logits { get; init; }
    /// <summary>Per layer, the tokens its feed-forward block ran on.</summary>
    public required int[] Kept { get; init; }
    /// <summary>Exact multiply-adds of this sequence.</summary>
    public required long Flops { get; init; }
    /// <summary>Multiply-adds of this sequence without gates.</summary>
    public required long DenseFlops { get; init; }
    /// <summary>Final hidden states of the surviving tokens [rows, hidden], when asked for.</summary>
    public float[]? Hidden { get; init; }
    /// <summary>Original positions of the tokens that entered each layer's feed-forward block, when asked
    /// for.</summary>
    public int[][]? Survivors { get; init; }
}

/// <summary>How an engine computes; every setting defaults to what the checkpoint says, or the best the CPU has.
/// </summary>
public sealed record EngineOptions
{
    /// <summary>FP32, or INT8 linear layers; default: the checkpoint's (config.json "precision").</summary>
    public Precision? Precision { get; init; }
    /// <summary>The gates' keep threshold; default: the config's.</summary>
    public float? GateThreshold { get; init; }
    /// <summary>The FP32 kernels' path; default: EDGEBERT_ISA, else the best this CPU supports.</summary>
    public Isa? Isa { get; init; }
    /// <summary>The INT8 kernels' path; default: EDGEBERT_INT8, else the best this CPU supports.</summary>
    public Int8Path? Int8Path { get; init; }
}

/// <summary>Gated models run gated unless UseGates is false.</summary>
public sealed record RunOptions(bool UseGates = true, bool ReturnHidden = false, bool ReturnSurvivors = false);

/// <summary>The inference engine: BERT's forward pass over a packed token buffer, with the token gates'
/// elimination between each layer's attention and feed-forward blocks. Linear weights are packed once
/// at construction (copies: what the caller passed in is never changed; embeddings and LayerNorm
/// parameters are read in place). Immutable, so one engine is shared freely: many threads can run it at
/// once, each with its own <see cref="InferenceWorkspace"/> (a workspace shared by two running threads is detected
/// and refused, since their activations would overwrite each other's). Dispose frees the packed weights' native
/// memory once the runs in progress have finished; a run started afterwards throws ObjectDisposedException.
/// </summary>
public sealed class BertEngine : IDisposable
{
    sealed class Layer
    {
        public required LinearLayer Qkv, AttentionOutput, Intermediate, Output;
        public required float[] Ln1Gamma, Ln1Beta, Ln2Gamma, Ln2Beta;
    }

    readonly float[] _wordEmbeddings, _positionEmbeddings, _tokenTypeEmbeddings, _embeddingGamma, _embeddingBeta;
    readonly Layer[] _layers;
    readonly LinearLayer? _pooler, _classifier;
    readonly float _eps;
    /// <summary>1 for the owner plus 1 per run in progress; the weights are freed when it reaches 0.</summary>
    int _references = 1;
    int _disposed;

    /// <summary>The model's configuration.</summary>
    public BertConfig Config { get; }
    /// <summary>The arithmetic of the linear layers.</summary>
    public Precision Precision { get; }
    /// <summary>The path of the FP32 kernels (every kernel but the INT8 products); weights are packed for it.</summary>
    public Isa Isa { get; }
    /// <summary>The INT8 kernels' path, or null for an FP32 engine.</summary>
    public Int8Path? Int8Path { get; }
    /// <summary>The gates' decision rule, or null for a model without gates.</summary>
    public TokenGateEvaluator? Gates { get; }
    /// <summary>Whether the model has token gates.</summary>
    public bool HasGates => Gates is not null;
    /// <summary>m_j of METHOD.md point 4, or null for a model without gates.</summary>
    public IReadOnlyList<int>? GateKeptCounts => Gates?.KeptCounts;
    /// <summary>hidden_size.</summary>
    public int Hidden => Config.HiddenSize;
    /// <summary>The classifier's outputs, 0 without a classifier head.</summary>
    public int NumLabels => _classifier?.OutFeatures ?? 0;

    /// <summary>Packs <paramref name="weights"/> for <see cref="EngineOptions.Precision"/> (by default the
    /// checkpoint's). Gates are evaluated at <see cref="EngineOptions.GateThreshold"/>, by default the config's
    /// (the threshold the model was trained and reported at).</summary>
    public BertEngine(BertConfig config, BertWeights weights, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        Config = config;
        Precision = options.Precision ?? config.Precision;
        Isa = IsaSelector.Resolve(options.Isa);
        int h = config.HiddenSize, ffn = config.IntermediateSize;
        if (h % config.NumAttentionHeads != 0)
            throw new InvalidDataException(
                $"hidden_size {h} is not a multiple of num_attention_heads {config.NumAttentionHeads}");
        if (config.HiddenAct is not ("gelu" or "gelu_python"))
            throw new NotSupportedException(
                $"hidden_act '{config.HiddenAct}' is not supported (only the exact erf GELU, 'gelu')");
        _eps = (float)config.LayerNormEps;
        bool int8 = Precision == Precision.Int8;
        Int8Path = int8 ? options.Int8Path ?? Int8Paths.Default : null;

        // INT8 keeps the word embeddings as int8 values too (the stored form), gathered as their dequantization.
        _wordEmbeddings = int8 ? Int8Matrix.Of(weights.WordEmbeddings).Dequantize() : weights.WordEmbeddings.Values;
        _positionEmbeddings = weights.PositionEmbeddings.Values;
        _tokenTypeEmbeddings = weights.TokenTypeEmbeddings.Values;
        _embeddingGamma = weights.EmbeddingLayerNormWeight.Values;
        _embeddingBeta = weights.EmbeddingLayerNormBias.Values;

        LinearLayer Linear(Param weight, Param bias) => int8
            ? Int8Linear.Pack(Int8Matrix.Of(weight), bias.Values, Int8Path!.Value, Isa)
            : Fp32Linear.Pack(weight.Values, weight.Shape[0], weight.Shape[1], bias.Values, Isa);
        _layers = new Layer[weights.Layers.Length];
        for (int j = 0; j < _layers.Length; j++)
        {
            var l = weights.Layers[j];
            _layers[j] = new Layer
            {
                Qkv = FusedQkv(l, h, Isa, Int8Path),
                AttentionOutput = Linear(l.AttentionOutputWeight, l.AttentionOutputBias),
                Ln1Gamma = l.AttentionLayerNormWeight.Values, Ln1Beta = l.AttentionLayerNormBias.Values,
                Intermediate = Linear(l.IntermediateWeight, l.IntermediateBias),
                Output = Linear(l.OutputWeight, l.OutputBias),
                Ln2Gamma = l.OutputLayerNormWeight.Values, Ln2Beta = l.OutputLayerNormBias.Values,
            };
        }
        if (weights.PoolerWeight is not null && weights.PoolerBias is not null)
            _pooler = Fp32Linear.Pack(weights.PoolerWeight.Values, h, h, weights.PoolerBias.Values, Isa);
        if (weights.ClassifierWeight is not null && weights.ClassifierBias is not null)
        {
            if (_pooler is null) throw new InvalidDataException("the checkpoint has a classifier but no pooler");
            _classifier = Fp32Linear.Pack(weights.ClassifierWeight.Values, weights.ClassifierWeight.Shape[0], h,
                weights.ClassifierBias.Values, Isa);
        }
        if (weights.HasGates)
            Gates = new TokenGateEvaluator(weights.Layers.Select(l => l.Gate?.Values).ToArray(),
                options.GateThreshold ?? config.GateThreshold);
    }

    /// <summary>An engine for a loaded checkpoint; see the constructor.</summary>
    public static BertEngine Load(BertCheckpoint checkpoint, EngineOptions? options = null) =>
        new(checkpoint.Config, checkpoint.Weights, options);

    /// <summary>Q, K and V share their input: one fused [3H, H] product gives rows [q | k | v]. Per-row int8
    /// scales make the fused matrix's quantization the three matrices' own.</summary>
    static LinearLayer FusedQkv(BertLayerWeights l, int h, Isa isa, Int8Path? int8)
    {
        float[] bias = [.. l.QueryBias.Values, .. l.KeyBias.Values, .. l.ValueBias.Values];
        if (int8 is null)
            return Fp32Linear.Pack([.. l.QueryWeight.Values, .. l.KeyWeight.Values, .. l.ValueWeight.Values],
                3 * h, h, bias, isa);
        Int8Matrix q = Int8Matrix.Of(l.QueryWeight), k = Int8Matrix.Of(l.KeyWeight), v = Int8Matrix.Of(l.ValueWeight);
        var fused = new Int8Matrix([.. q.Values, .. k.Values, .. v.Values], [.. q.Scales, .. k.Scales, .. v.Scales],
            3 * h, h);
        return Int8Linear.Pack(fused, bias, int8.Value, isa);
    }

    /// <summary>The tokens layer j's FFN runs on for a sequence of n tokens.</summary>
    public int KeptAt(int layer, int n, bool useGates) =>
        useGates && Gates is not null ? Gates.KeptAt(layer, n) : n;

    /// <summary>Runs a batch. Sequences are packed into one token buffer (no padding); each keeps its
    /// own length through the layers. Throws ArgumentException naming the sequence on bad ids.
    /// Thread-safe for the engine; <paramref name="workspace"/> must not be in use by another thread at the same
    /// time (InvalidOperationException if it is).</summary>
    public SequenceResult[] Run(IReadOnlyList<SequenceInput> batch, InferenceWorkspace workspace,
        RunOptions? options = null, WorkerPool? pool = null)
    {
        Validate(batch);
        AddReference();
        try
        {
            workspace.Enter();
            try
            {
                return Forward(batch, workspace, options ?? new RunOptions(), pool ?? WorkerPool.Single);
            }
            finally
            {
                workspace.Exit();
            }
        }
        finally
        {
            Release();
        }
    }

    void AddReference()
    {
        for (int seen = Volatile.Read(ref _references); ; )
        {
            if (seen == 0) throw new ObjectDisposedException(nameof(BertEngine));
            int before = Interlocked.CompareExchange(ref _references, seen + 1, seen);
            if (before == seen) return;
            seen = before;
        }
    }

    void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0) return;
        foreach (var layer in _layers)
            foreach (var linear in (LinearLayer[])[layer.Qkv, layer.AttentionOutput, layer.Intermediate, layer.Output])
                linear.Dispose();
        _pooler?.Dispose();
        _classifier?.Dispose();
    }

    /// <summary>Frees the packed weights (native memory) now, or when the last run in progress ends; runs started
    /// afterwards throw ObjectDisposedException. Calling it again does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Release();
    }

    /// <summary>Runs a batch with a workspace of its own (allocated per call).</summary>
    public SequenceResult[] Run(IReadOnlyList<SequenceInput> batch, RunOptions? options = null,
        WorkerPool? pool = null) =>
        Run(batch, new InferenceWorkspace(), options, pool);

    /// <summary>The forward pass. x [rows, H] holds one row per live token of every sequence.</summary>
    SequenceResult[] Forward(IReadOnlyList<SequenceInput> batch, InferenceWorkspace w, RunOptions options,
        WorkerPool pool)
    {
        int count = batch.Count, numLayers = _layers.Length;
        var tokens = w.Tokens;
        tokens.Reset(batch);
        w.Reserve(count, tokens.Rows, Config, Math.Max(NumLabels, 1));
        var kept = new int[count][];
        var survivors = options.ReturnSurvivors ? new int[count][][] : null;
        for (int s = 0; s < count; s++)
        {
            kept[s] = new int[numLayers];
            if (survivors is not null) survivors[s] = new int[numLayers][];
        }

        Embed(batch, w, pool);
        for (int j = 0; j < numLayers; j++)
        {
            bool eliminate = options.UseGates && Gates is not null && Gates.Eliminates(j, tokens);
            AttentionBlock(_layers[j], w, eliminate, pool);
            if (eliminate) GateStep(j, w);
            for (int s = 0; s < count; s++)
            {
                kept[s][j] = tokens.Lengths[s];
                if (survivors is not null)
                    survivors[s][j] = tokens.Positions.Slice(tokens.Offsets[s], kept[s][j]).ToArray();
            }
            FeedForwardBlock(_layers[j], w, pool);
        }
        Head(w, pool);
        return Results(batch, w, kept, survivors, options);
    }

    /// <summary>x[rows, H] = LayerNorm(word[id] + position[p] + token_type[t]) for every token.</summary>
    void Embed(IReadOnlyList<SequenceInput> batch, InferenceWorkspace w, WorkerPool pool)
    {
        int h = Hidden, row = 0;
        foreach (var sequence in batch)
        {
            var ids = sequence.InputIds;
            for (int p = 0; p < ids.Length; p++, row++)
            {
                var x = w.X.AsSpan(row * h, h);
                Elementwise.Add(_wordEmbeddings.AsSpan(ids[p] * h, h), _positionEmbeddings.AsSpan(p * h, h), x, Isa);
                int type = sequence.TokenTypeIds?[p] ?? 0;
                Elementwise.AddInPlace(x, _tokenTypeEmbeddings.AsSpan(type * h, h), Isa);
            }
        }
        w.LayerNorm.Run(w.X, row, h, _embeddingGamma, _embeddingBeta, _eps, Isa, pool);
    }

    /// <summary>qkv[rows, 3H] = x W_qkv^T + b; context[rows, H] = attention per (sequence, head);
    /// x = LayerNorm(x + context W_o^T + b_o). With <paramref name="recordReceived"/> each head's
    /// received attention is kept for the gate step.</summary>
    void AttentionBlock(Layer layer, InferenceWorkspace w, bool recordReceived, WorkerPool pool)
    {
        int rows = w.Tokens.Rows, h = Hidden;
        layer.Qkv.Forward(rows, w.X, w.Qkv, accumulate: false, GemmEpilogue.None, pool);
        w.Attention.Run(w, Config.NumAttentionHeads, h, recordReceived, Isa, pool);
        // The residual sum is formed in x itself: the product accumulates onto it, LayerNorm runs in place.
        layer.AttentionOutput.Forward(rows, w.Context, w.X, accumulate: true, GemmEpilogue.None, pool);
        w.LayerNorm.Run(w.X, rows, h, layer.Ln1Gamma, layer.Ln1Beta, _eps, Isa, pool);
    }

    /// <summary>Each sequence keeps its min(n, m_j) most significant tokens: x [rows, H] shrinks to
    /// [kept rows, H], the survivors in their original order.</summary>
    void GateStep(int layer, InferenceWorkspace w)
    {
        Gates!.PlanCompaction(layer, w.Tokens, w.ReceivedPerHead, Config.NumAttentionHeads,
            w.KeptLengths, w.KeptRows, w.GateScratch, Isa);
        w.Tokens.Compact(w.KeptLengths, w.KeptRows, w.X, Hidden);
    }

    /// <summary>inner[rows, F] = gelu(x W_1^T + b_1); x = LayerNorm(x + inner W_2^T + b_2).</summary>
    void FeedForwardBlock(Layer layer, InferenceWorkspace w, WorkerPool pool)
    {
        int rows = w.Tokens.Rows;
        layer.Intermediate.Forward(rows, w.X, w.Inner, accumulate: false, GemmEpilogue.Gelu, pool);
        layer.Output.Forward(rows, w.Inner, w.X, accumulate: true, GemmEpilogue.None, pool);
        w.LayerNorm.Run(w.X, rows, Hidden, layer.Ln2Gamma, layer.Ln2Beta, _eps, Isa, pool);
    }

    /// <summary>pooled[count, H] = tanh(x[CLS] W_p^T + b_p); logits[count, labels] = pooled W_c^T + b_c.</summary>
    void Head(InferenceWorkspace w, WorkerPool pool)
    {
        if (_pooler is null || _classifier is null) return;
        int h = Hidden, count = w.Tokens.Count;
        for (int s = 0; s < count; s++) w.X.AsSpan(w.Tokens.Offsets[s] * h, h).CopyTo(w.Cls.AsSpan(s * h, h));
        _pooler.Forward(count, w.Cls, w.Pooled, accumulate: false, GemmEpilogue.None, pool);
        var pooled = w.Pooled.AsSpan(0, count * h);
        Activations.Tanh(pooled, pooled, Isa);
        _classifier.Forward(count, w.Pooled, w.Logits, accumulate: false, GemmEpilogue.None, pool);
    }

    SequenceResult[] Results(IReadOnlyList<SequenceInput> batch, InferenceWorkspace w, int[][] kept,
        int[][][]? survivors, RunOptions options)
    {
        int h = Hidden, labels = NumLabels;
        var results = new SequenceResult[batch.Count];
        for (int s = 0; s < results.Length; s++)
        {
            var (flops, dense) = CountFlops(batch[s].InputIds.Length, kept[s]);
            results[s] = new SequenceResult
            {
                Logits = w.Logits.AsSpan(s * labels, labels).ToArray(),
                Kept = kept[s],
                Flops = flops,
                DenseFlops = dense,
                Hidden = options.ReturnHidden
                    ? w.X.AsSpan(w.Tokens.Offsets[s] * h, w.Tokens.Lengths[s] * h).ToArray() : null,
                Survivors = survivors?[s],
            };
        }
        return results;
    }

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
         FlopCounter.DenseMultiplyAdds(Hidden, Config.IntermediateSize, NumLabels, _layers.Length, n));
}
