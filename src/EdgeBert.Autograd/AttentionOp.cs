using EdgeBert.Kernels;

namespace EdgeBert.Autograd;

/// <summary>The output of <see cref="AttentionOps.MultiHeadAttention(Tape, Tensor, SequenceBatch, int, float[])"/>:
/// the context [T, H] and, per sequence, its softmax probabilities [heads, n, n] (row = query,
/// column = key), which the token gates rank by (received attention). The backward step reads the
/// probabilities again: read them, do not modify them.</summary>
public sealed class AttentionResult(Tensor context, float[][] probabilities)
{
    /// <summary>The attention output [rows, hidden].</summary>
    public Tensor Context { get; } = context;
    /// <summary>The softmax probabilities per sequence and head, kept for the backward pass and the gates.</summary>
    public float[][] Probabilities { get; } = probabilities;
}

/// <summary>Multi-head self-attention over a packed variable-length batch: every sequence attends
/// only within itself, P = softmax(Q K^T / sqrt(headDim) + keyMask), context = P V.</summary>
public static class AttentionOps
{
    /// <summary>Attention from a fused projection qkv [T, 3H] (columns: Q, then K, then V).
    /// keyMask (length T, optional) is the additive mask of each token as a key: 0 or -inf
    /// (padding-like or gated-out tokens); a masked key receives zero probability and zero gradient.</summary>
    public static AttentionResult MultiHeadAttention(this Tape tape, Tensor qkv, SequenceBatch batch, int heads,
        float[]? keyMask = null)
    {
        ArgumentNullException.ThrowIfNull(qkv);
        int hidden = qkv.Cols / 3;
        if (qkv.Cols != 3 * hidden) throw new ArgumentException($"fused qkv {qkv} must have 3 * hidden columns");
        var input = new Operands(qkv.Data, qkv.Data, qkv.Data, 0, hidden, 2 * hidden, 3 * hidden);
        var result = Forward(tape, input, qkv.Rows, hidden, batch, heads, keyMask);
        if (!tape.Tracks(qkv)) return result;
        var context = result.Context;
        context.RequiresGrad = true;
        tape.Record(() =>
        {
            if (context.Grad is not { } dContext) return;
            // The kernel overwrites every column of dqkv: a first contribution goes straight into the gradient.
            bool first = qkv.Grad is null;
            var dqkv = first ? qkv.EnsureGrad() : tape.NewBuffer(qkv.Length, false);
            var grads = new Operands(dqkv, dqkv, dqkv, 0, hidden, 2 * hidden, 3 * hidden);
            Backward(tape, input, grads, context.Grad, hidden, batch, heads, result.Probabilities);
            if (!first) Ops.AccumulateGrad(tape.Pool, qkv, dqkv);
        });
        return result;
    }

    /// <summary>Attention from separate q, k, v, each [T, H].</summary>
    public static AttentionResult MultiHeadAttention(this Tape tape, Tensor q, Tensor k, Tensor v, SequenceBatch batch,
        int heads, float[]? keyMask = null)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        int hidden = q.Cols;
        if (!q.Shape.AsSpan().SequenceEqual(k.Shape) || !q.Shape.AsSpan().SequenceEqual(v.Shape))
            throw new ArgumentException($"q, k, v must have equal shapes, got {q}, {k}, {v}");
        var input = new Operands(q.Data, k.Data, v.Data, 0, 0, 0, hidden);
        var result = Forward(tape, input, q.Rows, hidden, batch, heads, keyMask);
        if (!tape.Tracks(q, k, v)) return result;
        var context = result.Context;
        context.RequiresGrad = true;
        tape.Record(() =>
        {
            if (context.Grad is not { } dContext) return;
            // The kernel overwrites dq, dk and dv: a tensor's first contribution goes straight into its
            // gradient (in order, so a tensor passed twice gets a scratch the second time).
            bool qFirst = q.RequiresGrad && q.Grad is null;
            var dq = qFirst ? q.EnsureGrad() : tape.NewBuffer(q.Length, false);
            bool kFirst = k.RequiresGrad && k.Grad is null;
            var dk = kFirst ? k.EnsureGrad() : tape.NewBuffer(k.Length, false);
            bool vFirst = v.RequiresGrad && v.Grad is null;
            var dv = vFirst ? v.EnsureGrad() : tape.NewBuffer(v.Length, false);
            var grads = new Operands(dq, dk, dv, 0, 0, 0, hidden);
            Backward(tape, input, grads, dContext, hidden, batch, heads, result.Probabilities);
            if (q.RequiresGrad && !qFirst) Ops.AccumulateGrad(tape.Pool, q, dq);
            if (k.RequiresGrad && !kFirst) Ops.AccumulateGrad(tape.Pool, k, dk);
            if (v.RequiresGrad && !vFirst) Ops.AccumulateGrad(tape.Pool, v, dv);
        });
        return result;
    }

    /// <summary>Where Q, K and V live: arrays, column offsets and a shared row stride.</summary>
    readonly record struct Operands(float[] Q, float[] K, float[] V, int QColumn, int KColumn, int VColumn, int Ld)
    {
        public ReadOnlySpan<float> QRows(int row) => Q.AsSpan(row * Ld + QColumn);
        public ReadOnlySpan<float> KRows(int row) => K.AsSpan(row * Ld + KColumn);
        public ReadOnlySpan<float> VRows(int row) => V.AsSpan(row * Ld + VColumn);
        public Span<float> QOut(int row) => Q.AsSpan(row * Ld + QColumn);
        public Span<float> KOut(int row) => K.AsSpan(row * Ld + KColumn);
        public Span<float> VOut(int row) => V.AsSpan(row * Ld + VColumn);
    }

    static AttentionResult Forward(Tape tape, Operands input, int rows, int hidden, SequenceBatch batch, int heads,
        float[]? keyMask)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        if (hidden % heads != 0)
            throw new ArgumentException($"hidden size {hidden} is not a multiple of {heads} heads");
        if (rows != batch.TotalTokens)
            throw new ArgumentException($"{rows} token rows, but the batch has {batch.TotalTokens} tokens");
        if (keyMask is not null && keyMask.Length != rows)
            throw new ArgumentException($"key mask has {keyMask.Length} values for {rows} tokens");
        var context = tape.NewTensor(true, rows, hidden);
        var probabilities = new float[batch.Count][];
        for (int s = 0; s < batch.Count; s++)
            probabilities[s] = tape.NewBuffer(heads * batch.Length(s) * batch.Length(s), clear: true);
        var work = new HeadWork(input, default, context.Data, hidden, batch, heads, keyMask, probabilities,
            backward: false);
        Run(tape, work, batch.Count * heads);
        return new AttentionResult(context, probabilities);
    }

    static void Backward(Tape tape, Operands input, Operands grads, float[] dContext, int hidden, SequenceBatch batch,
        int heads, float[][] probabilities)
    {
        var work = new HeadWork(input, grads, dContext, hidden, batch, heads, null, probabilities, backward: true);
        Run(tape, work, batch.Count * heads);
    }

    static void Run(Tape tape, HeadWork work, int parts)
    {
        if (tape.Pool is { } pool) pool.Run(work, parts);
        else for (int part = 0; part < parts; part++) work.Execute(part);
    }

    /// <summary>One (sequence, head) pair per part. Parts write disjoint columns and rows, so the
    /// result does not depend on which thread runs which part.</summary>
    sealed class HeadWork(Operands input, Operands grads, float[] context, int hidden, SequenceBatch batch, int heads,
        float[]? keyMask, float[][] probabilities, bool backward) : IParallelWork
    {
        public void Execute(int part)
        {
            int s = part / heads, head = part % heads;
            int offset = batch.Offset(s), n = batch.Length(s), headDim = hidden / heads;
            var headProbs = probabilities[s].AsSpan(head * n * n, n * n);
            var contextRows = context.AsSpan(offset * hidden);
            if (!backward)
            {
                ReadOnlySpan<float> mask = keyMask is null ? default : keyMask.AsSpan(offset, n);
                Attention.ForwardHead(input.QRows(offset), input.KRows(offset), input.VRows(offset),
                    input.Ld, n, headDim, head, contextRows, hidden, headProbs, mask);
            }
            else
            {
                Attention.BackwardHead(input.QRows(offset), input.KRows(offset), input.VRows(offset), input.Ld, n,
                    headDim, head, headProbs, contextRows, hidden, grads.QOut(offset), grads.KOut(offset),
                    grads.VOut(offset));
            }
        }
    }
}
