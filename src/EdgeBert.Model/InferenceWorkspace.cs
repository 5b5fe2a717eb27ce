using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>The buffers of one caller's forward passes: the packed token buffer (rows = tokens of all
/// sequences) and its per-sequence offsets. They grow to the largest batch seen and are then reused,
/// so steady-state inference allocates nothing that scales with the model or the batch. Not thread-safe:
/// one workspace per concurrent caller.</summary>
public sealed class InferenceWorkspace
{
    // The activations, on cache-line boundaries so the kernels' full-width row accesses never split a line.
    readonly AlignedBuffer _x = new(), _qkv = new(), _context = new(), _inner = new();
    float[] _receivedPerHead = [], _significance = [], _cls = [], _pooled = [], _logits = [];
    int[] _offsets = [], _lengths = [], _positions = [], _keptRows = [];
    ulong[] _rankKeys = [];
    readonly AttentionJob _attention = new();
    readonly LayerNormJob _layerNorm = new();

    internal SequenceResult[] Run(BertEngine engine, IReadOnlyList<SequenceInput> batch, RunOptions options, WorkerPool pool)
    {
        var config = engine.Config;
        int h = config.HiddenSize, heads = config.NumAttentionHeads, numLayers = engine.Layers.Length;
        int count = batch.Count, total = 0, longest = 0;
        foreach (var s in batch) { total += s.InputIds.Length; longest = Math.Max(longest, s.InputIds.Length); }
        Reserve(count, total, longest, h, config.IntermediateSize, heads, Math.Max(engine.NumLabels, 1));

        var kept = new int[count][];
        var survivors = options.ReturnSurvivors ? new int[count][][] : null;
        for (int s = 0; s < count; s++)
        {
            kept[s] = new int[numLayers];
            if (survivors is not null) survivors[s] = new int[numLayers][];
        }

        Embed(engine, batch, total, pool);
        float eps = (float)config.LayerNormEps;
        int rows = total;
        for (int j = 0; j < numLayers; j++)
        {
            var layer = engine.Layers[j];
            // Attention block: fused QKV, per (sequence, head) attention, output projection + residual, LayerNorm.
            Gemm.Multiply(rows, _x, h, layer.Qkv, _qkv, 3 * h, bias: layer.QkvBias, pool: pool);
            bool gate = options.UseGates && engine.HasGates && NeedsElimination(engine, j, count);
            _attention.Run(this, count, heads, h / heads, h, gate, engine.Isa, pool);
            // The residual sum is formed in x itself: the product accumulates onto it, LayerNorm runs in place.
            Gemm.Multiply(rows, _context, h, layer.AttentionOutput, _x, h, accumulate: true, bias: layer.AttentionOutputBias, pool: pool);
            _layerNorm.Run(_x, rows, h, layer.Ln1Gamma, layer.Ln1Beta, eps, engine.Isa, pool);

            if (gate) rows = Eliminate(engine, j, count, heads, h);
            for (int s = 0; s < count; s++)
            {
                kept[s][j] = _lengths[s];
                if (survivors is not null) survivors[s][j] = _positions.AsSpan(_offsets[s], _lengths[s]).ToArray();
            }

            // Feed-forward block on the kept rows only.
            Gemm.Multiply(rows, _x, h, layer.Intermediate, _inner, config.IntermediateSize,
                bias: layer.IntermediateBias, epilogue: GemmEpilogue.Gelu, pool: pool);
            Gemm.Multiply(rows, _inner, config.IntermediateSize, layer.Output, _x, h, accumulate: true, bias: layer.OutputBias, pool: pool);
            _layerNorm.Run(_x, rows, h, layer.Ln2Gamma, layer.Ln2Beta, eps, engine.Isa, pool);
        }

        Classify(engine, count, h, pool);
        var results = new SequenceResult[count];
        int labels = engine.NumLabels;
        for (int s = 0; s < count; s++)
        {
            int n = batch[s].InputIds.Length;
            var (flops, dense) = engine.CountFlops(n, kept[s]);
            results[s] = new SequenceResult
            {
                Logits = _logits.AsSpan(s * labels, labels).ToArray(),
                Kept = kept[s],
                Flops = flops,
                DenseFlops = dense,
                Hidden = options.ReturnHidden ? _x.AsSpan(_offsets[s] * h, _lengths[s] * h).ToArray() : null,
                Survivors = survivors?[s],
            };
        }
        return results;
    }

    void Reserve(int count, int total, int longest, int h, int intermediate, int heads, int labels)
    {
        _x.EnsureCapacity(total * h); _context.EnsureCapacity(total * h);
        _qkv.EnsureCapacity(total * 3 * h); _inner.EnsureCapacity(total * intermediate);
        Grow(ref _receivedPerHead, total * heads); Grow(ref _significance, longest);
        Grow(ref _cls, count * h); Grow(ref _pooled, count * h); Grow(ref _logits, count * labels);
        Grow(ref _offsets, count); Grow(ref _lengths, count); Grow(ref _positions, total);
        Grow(ref _keptRows, longest); Grow(ref _rankKeys, longest);
    }

    static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = GC.AllocateUninitializedArray<T>(length);
    }

    /// <summary>x = LayerNorm(word[id] + position[p] + token_type[t]) for every token of the batch.</summary>
    void Embed(BertEngine engine, IReadOnlyList<SequenceInput> batch, int total, WorkerPool pool)
    {
        int h = engine.Hidden, row = 0;
        for (int s = 0; s < batch.Count; s++)
        {
            var ids = batch[s].InputIds;
            var types = batch[s].TokenTypeIds;
            _offsets[s] = row;
            _lengths[s] = ids.Length;
            for (int p = 0; p < ids.Length; p++, row++)
            {
                var dst = _x.AsSpan(row * h, h);
                Elementwise.Add(engine.WordEmbeddings.AsSpan(ids[p] * h, h), engine.PositionEmbeddings.AsSpan(p * h, h),
                    dst, engine.Isa);
                Elementwise.AddInPlace(dst, engine.TokenTypeEmbeddings.AsSpan((types?[p] ?? 0) * h, h), engine.Isa);
                _positions[row] = p;
            }
        }
        _layerNorm.Run(_x, total, h, engine.EmbeddingGamma, engine.EmbeddingBeta, (float)engine.Config.LayerNormEps,
            engine.Isa, pool);
    }

    bool NeedsElimination(BertEngine engine, int layer, int count)
    {
        for (int s = 0; s < count; s++)
            if (engine.KeptAt(layer, _lengths[s], true) < _lengths[s]) return true;
        return false;
    }

    /// <summary>The gate evaluator: rank each sequence's tokens by the attention they received, keep
    /// the top min(n, m_j) in original order, and move the kept rows down in place. Rows only ever
    /// move to lower indices, so a forward copy never overwrites a row still to be read.</summary>
    int Eliminate(BertEngine engine, int layer, int count, int heads, int h)
    {
        int write = 0;
        for (int s = 0; s < count; s++)
        {
            int n = _lengths[s], start = _offsets[s];
            int m = engine.KeptAt(layer, n, true);
            var keptRows = _keptRows.AsSpan(0, n);
            if (m < n)
            {
                var sig = _significance.AsSpan(0, n);
                sig.Clear();
                for (int hd = 0; hd < heads; hd++)
                    Elementwise.AddInPlace(sig, _receivedPerHead.AsSpan(start * heads + hd * n, n), engine.Isa);
                m = TokenGates.SelectKept(sig, m, keptRows, _rankKeys);
            }
            else for (int i = 0; i < n; i++) keptRows[i] = i;

            for (int i = 0; i < m; i++)
            {
                int from = start + keptRows[i], to = write + i;
                if (from != to)
                {
                    _x.AsSpan(from * h, h).CopyTo(_x.AsSpan(to * h, h));
                    _positions[to] = _positions[from];
                }
            }
            _offsets[s] = write;
            _lengths[s] = m;
            write += m;
        }
        return write;
    }

    /// <summary>Pooler tanh(W h[CLS] + b) and classifier, one row per sequence.</summary>
    void Classify(BertEngine engine, int count, int h, WorkerPool pool)
    {
        if (engine.Pooler is null || engine.Classifier is null) return;
        for (int s = 0; s < count; s++) _x.AsSpan(_offsets[s] * h, h).CopyTo(_cls.AsSpan(s * h, h));
        Gemm.Multiply(count, _cls, h, engine.Pooler, _pooled, h, bias: engine.PoolerBias, pool: pool);
        var pooled = _pooled.AsSpan(0, count * h);
        Activations.Tanh(pooled, pooled, engine.Isa);
        Gemm.Multiply(count, _pooled, h, engine.Classifier, _logits, engine.NumLabels, bias: engine.ClassifierBias, pool: pool);
    }

    /// <summary>LayerNorm in place over the rows, in blocks of rows claimed dynamically by the pool's threads
    /// (rows are independent, so the result does not depend on the split).</summary>
    sealed class LayerNormJob : IParallelWork
    {
        /// <summary>Rows per part: below this a fork/join costs more than it saves.</summary>
        const int MinRows = 16;
        /// <summary>Parts per thread, so a thread that loses its core leaves its share to the others.</summary>
        const int PartsPerThread = 4;
        AlignedBuffer _x = null!;
        int _rows, _cols, _parts;
        float[] _gamma = [], _beta = [];
        float _eps;
        Isa _isa;

        public void Run(AlignedBuffer x, int rows, int cols, float[] gamma, float[] beta, float eps, Isa isa,
            WorkerPool pool)
        {
            _x = x; _rows = rows; _cols = cols; _gamma = gamma; _beta = beta; _eps = eps; _isa = isa;
            _parts = Math.Clamp(rows / MinRows, 1, WorkerPool.PartLimit(pool.Threads, PartsPerThread));
            if (_parts == 1) Execute(0);
            else pool.Run(this, _parts);
        }

        public void Execute(int part)
        {
            int first = (int)((long)part * _rows / _parts), last = (int)((long)(part + 1) * _rows / _parts);
            var block = _x.AsSpan(first * _cols, (last - first) * _cols);
            LayerNorm.Forward(block, block, last - first, _cols, _gamma, _beta, _eps, isa: _isa);
        }
    }

    /// <summary>Attention, one part per (sequence, head) pair, claimed dynamically so that a thread whose
    /// core is taken by another process does not hold up the join. Each thread has its own probability
    /// scratch of n^2 floats.</summary>
    sealed class AttentionJob : IParallelWork
    {
        [ThreadStatic] static AlignedBuffer? t_probs;
        InferenceWorkspace _w = null!;
        int _heads, _headDim, _hidden;
        bool _recordReceived;
        Isa _isa;

        public void Run(InferenceWorkspace w, int count, int heads, int headDim, int hidden, bool recordReceived,
            Isa isa, WorkerPool pool)
        {
            _w = w; _heads = heads; _headDim = headDim; _hidden = hidden; _recordReceived = recordReceived; _isa = isa;
            pool.Run(this, count * heads);
        }

        public void Execute(int pair)
        {
            var w = _w;
            int h = _hidden, ld = 3 * h;
            int s = pair / _heads, head = pair % _heads;
            int n = w._lengths[s], start = w._offsets[s];
            var probs = AlignedBuffer.Scratch(ref t_probs, n * n);
            var qkv = w._qkv.AsSpan(start * ld, n * ld);
            Attention.ForwardHead(qkv, qkv[h..], qkv[(2 * h)..], ld, n, _headDim, head,
                w._context.AsSpan(start * h, n * h), h, probs, isa: _isa);
            if (_recordReceived)
                Attention.ReceivedAttention(probs, n, 1, w._receivedPerHead.AsSpan(start * _heads + head * n, n), _isa);
        }
    }
}
