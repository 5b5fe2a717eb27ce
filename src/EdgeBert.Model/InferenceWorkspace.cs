using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>The buffers of one caller's forward passes. They grow to the largest batch seen and are then
/// reused, so steady-state inference allocates nothing that scales with the model or the batch.
/// Not thread-safe: one workspace per concurrent caller (a thread may reuse its own for every call; an engine,
/// by contrast, is shared freely). Two threads running with one workspace at once get an
/// InvalidOperationException rather than silently mixed activations.</summary>
public sealed class InferenceWorkspace
{
    /// <summary>1 while a <see cref="BertEngine"/> run uses the buffers: one atomic exchange per batch, no
    /// allocation.</summary>
    int _inUse;

    internal void Enter()
    {
        if (Interlocked.Exchange(ref _inUse, 1) != 0)
            throw new InvalidOperationException(
                "an InferenceWorkspace is being used by two threads at once; give each thread its own");
    }

    internal void Exit() => Volatile.Write(ref _inUse, 0);

    // Activations on cache-line boundaries, so the kernels' full-width row accesses never split a line.
    internal readonly AlignedBuffer X = new(), Qkv = new(), Context = new(), Inner = new();
    internal readonly PackedTokens Tokens = new();
    /// <summary>Per sequence at row offset o and length n: its heads' received attention
    /// [heads, n] at o * heads.</summary>
    internal float[] ReceivedPerHead = [];
    internal float[] Cls = [], Pooled = [], Logits = [];
    internal int[] KeptLengths = [], KeptRows = [];
    internal readonly TokenGateEvaluator.Scratch GateScratch = new();
    internal readonly AttentionJob Attention = new();
    internal readonly RowLayerNormJob LayerNorm = new();

    internal void Reserve(int count, int rows, BertConfig config, int labels)
    {
        int h = config.HiddenSize;
        X.EnsureCapacity(rows * h);
        Context.EnsureCapacity(rows * h);
        Qkv.EnsureCapacity(rows * 3 * h);
        Inner.EnsureCapacity(rows * config.IntermediateSize);
        Grow(ref ReceivedPerHead, rows * config.NumAttentionHeads);
        Grow(ref Cls, count * h);
        Grow(ref Pooled, count * h);
        Grow(ref Logits, count * labels);
        Grow(ref KeptLengths, count);
        Grow(ref KeptRows, rows);
    }

    static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = GC.AllocateUninitializedArray<T>(length);
    }
}

/// <summary>LayerNorm in place over the rows, in blocks of rows claimed dynamically by the pool's threads
/// (rows are independent, so the result does not depend on the split).</summary>
internal sealed class RowLayerNormJob : IParallelWork
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
        Kernels.LayerNorm.Forward(block, block, last - first, _cols, _gamma, _beta, _eps, isa: _isa);
    }
}

/// <summary>Attention, one part per (sequence, head) pair, claimed dynamically so that a thread whose
/// core is taken by another process does not hold up the join. Each thread has its own probability
/// scratch of n^2 floats; with <c>recordReceived</c> each head's received attention is kept for the gates.</summary>
internal sealed class AttentionJob : IParallelWork
{
    [ThreadStatic] static AlignedBuffer? t_probs;
    InferenceWorkspace _w = null!;
    int _heads, _headDim, _hidden;
    bool _recordReceived;
    Isa _isa;

    public void Run(InferenceWorkspace w, int heads, int hidden, bool recordReceived, Isa isa, WorkerPool pool)
    {
        _w = w; _heads = heads; _headDim = hidden / heads; _hidden = hidden; _recordReceived = recordReceived;
        _isa = isa;
        pool.Run(this, w.Tokens.Count * heads);
    }

    public void Execute(int pair)
    {
        var w = _w;
        int h = _hidden, ld = 3 * h;
        int s = pair / _heads, head = pair % _heads;
        int n = w.Tokens.Lengths[s], start = w.Tokens.Offsets[s];
        var probs = AlignedBuffer.Scratch(ref t_probs, n * n);
        var qkv = w.Qkv.AsSpan(start * ld, n * ld);
        Kernels.Attention.ForwardHead(qkv, qkv[h..], qkv[(2 * h)..], ld, n, _headDim, head,
            w.Context.AsSpan(start * h, n * h), h, probs, isa: _isa);
        if (_recordReceived)
            TokenGateEvaluator.ReceivedAttention(probs, n, w.ReceivedPerHead.AsSpan(start * _heads + head * n, n),
                isa: _isa);
    }
}
