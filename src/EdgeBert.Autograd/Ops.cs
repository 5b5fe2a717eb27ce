using EdgeBert.Kernels;

namespace EdgeBert.Autograd;

/// <summary>Differentiable ops. Each computes its forward pass with the SIMD kernels and, when
/// one of its inputs requires a gradient and the tape is recording, records a backward step that
/// ADDS into the inputs' gradients (so a tensor used twice receives both contributions).</summary>
public static class Ops
{
    /// <summary>y[T, out] = x[T, in] W^T + b, with W stored [out, in] (the nn.Linear layout).</summary>
    public static Tensor Linear(this Tape tape, Tensor x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Shape.Length != 2) throw new ArgumentException($"Linear weight must be [out, in], got {weight}");
        int outFeatures = weight.Shape[0], inFeatures = weight.Shape[1];
        if (x.Cols != inFeatures) throw new ArgumentException($"Linear input {x} does not have {inFeatures} columns");
        if (bias is not null && bias.Length != outFeatures)
            throw new ArgumentException($"Linear bias {bias} does not have {outFeatures} values");
        int rows = x.Rows;
        var y = tape.NewTensor(inFeatures == 0, rows, outFeatures); // the GEMM writes every element
        Gemm.Multiply(rows, outFeatures, inFeatures, x.Data, inFeatures, false, weight.Data, inFeatures, true,
            y.Data, outFeatures, bias: bias is null ? default : bias.Data, pool: tape.Pool);
        if (!tape.Tracks(x, weight, bias)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            // dx[T, in] += dy[T, out] W[out, in]; a first contribution is written, not added to zeros
            if (x.RequiresGrad)
            {
                bool first = x.Grad is null;
                Gemm.Multiply(rows, inFeatures, outFeatures, dy, outFeatures, false, weight.Data, inFeatures, false,
                    x.EnsureGrad(), inFeatures, accumulate: !first, pool: tape.Pool);
            }
            if (weight.RequiresGrad) // dW[out, in] += dy^T x
                Gemm.Multiply(outFeatures, inFeatures, rows, dy, outFeatures, true, x.Data, inFeatures, false,
                    weight.EnsureGrad(), inFeatures, accumulate: true, pool: tape.Pool);
            if (bias is { RequiresGrad: true })
                AccumulateColumnSums(tape.Pool, dy, rows, outFeatures, bias.EnsureGrad());
        });
        return y;
    }

    /// <summary>y[t] = table[ids[t]]: rows of a [V, H] table; the gradient is scatter-added back.</summary>
    public static Tensor EmbeddingGather(this Tape tape, Tensor table, int[] ids)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(ids);
        int vocab = table.Rows, width = table.Cols;
        for (int t = 0; t < ids.Length; t++)
            if ((uint)ids[t] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(ids), $"id {ids[t]} at {t} is outside [0, {vocab})");
        var y = tape.NewTensor(false, ids.Length, width);
        ParallelChunks.Run(tape.Pool, ids.Length, ParallelChunks.RowGrain(width), (_, start, end) =>
        {
            for (int t = start; t < end; t++)
                table.Data.AsSpan(ids[t] * width, width).CopyTo(y.Data.AsSpan(t * width, width));
        });
        if (!tape.Tracks(table)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dTable = table.EnsureGrad();
            // Chunks own column ranges and add the tokens in order, so repeated ids sum exactly as serially.
            ParallelChunks.Run(tape.Pool, width, ColumnGrain, (_, c0, c1) =>
            {
                for (int t = 0; t < ids.Length; t++)
                    Elementwise.AddInPlace(dTable.AsSpan(ids[t] * width + c0, c1 - c0),
                        dy.AsSpan(t * width + c0, c1 - c0));
            });
        });
        return y;
    }

    /// <summary>y[r] = x[rows[r]] (e.g. the [CLS] row of every sequence); the gradient is scatter-added.</summary>
    public static Tensor SelectRows(this Tape tape, Tensor x, int[] rows)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rows);
        int count = x.Rows, width = x.Cols;
        var y = tape.NewTensor(false, rows.Length, width);
        for (int r = 0; r < rows.Length; r++)
        {
            if ((uint)rows[r] >= (uint)count)
                throw new ArgumentOutOfRangeException(nameof(rows), $"row {rows[r]} is outside [0, {count})");
            x.Data.AsSpan(rows[r] * width, width).CopyTo(y.Data.AsSpan(r * width, width));
        }
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dx = x.EnsureGrad();
            for (int r = 0; r < rows.Length; r++)
                Elementwise.AddInPlace(dx.AsSpan(rows[r] * width, width), dy.AsSpan(r * width, width));
        });
        return y;
    }

    /// <summary>y = a + b (same shape).</summary>
    public static Tensor Add(this Tape tape, Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"Add needs equal shapes, got {a} and {b}");
        var y = tape.NewTensor(false, a.Shape);
        ParallelChunks.Run(tape.Pool, a.Length, ParallelChunks.ElementGrain, (_, start, end) =>
            Elementwise.Add(a.Data.AsSpan(start..end), b.Data.AsSpan(start..end), y.Data.AsSpan(start..end)));
        if (!tape.Tracks(a, b)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            if (a.RequiresGrad) AccumulateGrad(tape.Pool, a, dy);
            if (b.RequiresGrad) AccumulateGrad(tape.Pool, b, dy);
        });
        return y;
    }

    /// <summary>y = s * x.</summary>
    public static Tensor Scale(this Tape tape, Tensor x, float s)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = tape.NewTensor(false, x.Shape);
        Elementwise.Scale(x.Data, s, y.Data);
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is { } dy) Elementwise.Axpy(s, dy, x.EnsureGrad());
        });
        return y;
    }

    /// <summary>The scalar sum of all elements (shape [1]).</summary>
    public static Tensor Sum(this Tape tape, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        double sum = 0;
        foreach (float v in x.Data) sum += v;
        var y = new Tensor([(float)sum], 1);
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dx = x.EnsureGrad();
            for (int i = 0; i < dx.Length; i++) dx[i] += dy[0];
        });
        return y;
    }

    /// <summary>The scalar mean of all elements (shape [1]).</summary>
    public static Tensor Mean(this Tape tape, Tensor x) => tape.Scale(tape.Sum(x), x.Length == 0 ? 0f : 1f / x.Length);

    /// <summary>LayerNorm over the last dimension with gain gamma and shift beta (both [cols]).</summary>
    public static Tensor LayerNorm(this Tape tape, Tensor x, Tensor gamma, Tensor beta, float eps)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(gamma);
        ArgumentNullException.ThrowIfNull(beta);
        int rows = x.Rows, cols = x.Cols;
        var y = tape.NewTensor(false, x.Shape);
        bool track = tape.Tracks(x, gamma, beta);
        float[] mean = track ? tape.NewBuffer(rows, false) : [], rstd = track ? tape.NewBuffer(rows, false) : [];
        int grain = ParallelChunks.RowGrain(cols);
        ParallelChunks.Run(tape.Pool, rows, grain, (_, r0, r1) =>
            Kernels.LayerNorm.Forward(x.Data.AsSpan(r0 * cols, (r1 - r0) * cols),
                y.Data.AsSpan(r0 * cols, (r1 - r0) * cols), r1 - r0, cols, gamma.Data, beta.Data, eps,
                track ? mean.AsSpan(r0..r1) : default, track ? rstd.AsSpan(r0..r1) : default));
        if (!track) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            // The kernel overwrites dx: a first contribution goes straight into x's gradient, a later
            // one through a per-chunk scratch. dgamma and dbeta are summed per chunk, then in chunk order.
            bool first = x.Grad is null;
            var dxAll = x.RequiresGrad ? x.EnsureGrad() : null;
            int chunks = ParallelChunks.Count(rows, grain);
            var partials = tape.NewBuffer(chunks * 2 * cols, clear: true);
            ParallelChunks.Run(tape.Pool, rows, grain, (chunk, r0, r1) =>
            {
                int count = (r1 - r0) * cols;
                float[]? scratch = first && dxAll is not null ? null
                    : System.Buffers.ArrayPool<float>.Shared.Rent(count);
                var dx = scratch is null ? dxAll.AsSpan(r0 * cols, count) : scratch.AsSpan(0, count);
                Kernels.LayerNorm.Backward(x.Data.AsSpan(r0 * cols, count), dy.AsSpan(r0 * cols, count), gamma.Data,
                    mean.AsSpan(r0..r1), rstd.AsSpan(r0..r1), r1 - r0, cols, dx,
                    partials.AsSpan(chunk * 2 * cols, cols), partials.AsSpan((chunk * 2 + 1) * cols, cols));
                if (scratch is null) return;
                if (dxAll is not null) Elementwise.AddInPlace(dxAll.AsSpan(r0 * cols, count), dx);
                System.Buffers.ArrayPool<float>.Shared.Return(scratch);
            });
            var dGamma = gamma.RequiresGrad ? gamma.EnsureGrad() : null;
            var dBeta = beta.RequiresGrad ? beta.EnsureGrad() : null;
            for (int chunk = 0; chunk < chunks; chunk++)
            {
                if (dGamma is not null) Elementwise.AddInPlace(dGamma, partials.AsSpan(chunk * 2 * cols, cols));
                if (dBeta is not null) Elementwise.AddInPlace(dBeta, partials.AsSpan((chunk * 2 + 1) * cols, cols));
            }
        });
        return y;
    }

    /// <summary>Exact (erf) GELU.</summary>
    public static Tensor Gelu(this Tape tape, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = tape.NewTensor(false, x.Shape);
        ParallelChunks.Run(tape.Pool, x.Length, ParallelChunks.ElementGrain, (_, start, end) =>
            Activations.Gelu(x.Data.AsSpan(start..end), y.Data.AsSpan(start..end)));
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            AccumulateGrad(tape.Pool, x,
                (start, end, dx) => Activations.GeluBackward(x.Data.AsSpan(start..end), dy.AsSpan(start..end), dx));
        });
        return y;
    }

    /// <summary>Hyperbolic tangent (the pooler's activation).</summary>
    public static Tensor Tanh(this Tape tape, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = tape.NewTensor(false, x.Shape);
        Activations.Tanh(x.Data, y.Data);
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            // dx += dy (1 - y^2) = dy - dy y^2
            var dyY2 = new float[x.Length];
            Elementwise.Multiply(y.Data, y.Data, dyY2);
            Elementwise.Multiply(dyY2, dy, dyY2);
            var dx = x.EnsureGrad();
            Elementwise.AddInPlace(dx, dy);
            Elementwise.Axpy(-1f, dyY2, dx);
        });
        return y;
    }

    /// <summary>Inverted dropout: while training, each element is zeroed with probability p and the
    /// survivors are scaled by 1/(1-p), drawing from <paramref name="rng"/> in element order; at
    /// evaluation (or p = 0) it returns x itself.</summary>
    public static Tensor Dropout(this Tape tape, Tensor x, float p, Rng rng, bool training)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rng);
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1)");
        if (!training || p == 0f) return x;
        var mask = tape.NewBuffer(x.Length, false);
        float keepScale = 1f / (1f - p);
        // 24-bit uniforms, two per 64-bit draw; element i is dropped when u < p. SplitMix64's draw j is a
        // function of the start state and j alone, so chunks draw their own stretch of the sequence.
        uint threshold = (uint)Math.Round(p * (1 << 24));
        ulong start = rng.Skip((mask.Length + 1) / 2);
        var y = tape.NewTensor(false, x.Shape);
        ParallelChunks.Run(tape.Pool, mask.Length, ParallelChunks.ElementGrain, (_, begin, end) =>
        {
            for (int i = begin; i < end; i += 2) // begin is even: the grain is
            {
                ulong bits = Rng.Draw(start, i / 2);
                mask[i] = (uint)(bits >> 40) < threshold ? 0f : keepScale;
                if (i + 1 < end) mask[i + 1] = (uint)(bits >> 8 & 0xFFFFFF) < threshold ? 0f : keepScale;
            }
            Elementwise.Multiply(x.Data.AsSpan(begin..end), mask.AsSpan(begin..end), y.Data.AsSpan(begin..end));
        });
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            AccumulateGrad(tape.Pool, x,
                (begin, end, dx) => Elementwise.Multiply(dy.AsSpan(begin..end), mask.AsSpan(begin..end), dx));
        });
        return y;
    }

    /// <summary>Columns per chunk when chunks own column ranges (reductions over rows kept in row order).</summary>
    const int ColumnGrain = 64;

    /// <summary>Writes one contribution to x's gradient: compute(start, end, dx) overwrites dx with the
    /// contribution to elements [start, end). The first contribution is written straight into the
    /// gradient; a later one goes through a per-chunk scratch and is added.</summary>
    internal static void AccumulateGrad(WorkerPool? pool, Tensor x, ContributionWriter compute)
    {
        bool first = x.Grad is null;
        var grad = x.EnsureGrad();
        ParallelChunks.Run(pool, grad.Length, ParallelChunks.ElementGrain, (_, start, end) =>
        {
            if (first)
            {
                compute(start, end, grad.AsSpan(start..end));
                return;
            }
            var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(end - start);
            var dx = scratch.AsSpan(0, end - start);
            compute(start, end, dx);
            Elementwise.AddInPlace(grad.AsSpan(start..end), dx);
            System.Buffers.ArrayPool<float>.Shared.Return(scratch);
        });
    }

    /// <summary>Adds <paramref name="contribution"/> (x's length) to x's gradient.</summary>
    internal static void AccumulateGrad(WorkerPool? pool, Tensor x, float[] contribution)
    {
        bool first = x.Grad is null;
        var grad = x.EnsureGrad();
        ParallelChunks.Run(pool, grad.Length, ParallelChunks.ElementGrain, (_, start, end) =>
        {
            if (first) contribution.AsSpan(start..end).CopyTo(grad.AsSpan(start..end));
            else Elementwise.AddInPlace(grad.AsSpan(start..end), contribution.AsSpan(start..end));
        });
    }

    /// <summary>sums[c] += sum over rows of x[r, c]; chunks own column ranges and add rows in order,
    /// so the sums equal the serial ones bit for bit.</summary>
    static void AccumulateColumnSums(WorkerPool? pool, float[] x, int rows, int cols, float[] sums)
    {
        ParallelChunks.Run(pool, cols, ColumnGrain, (_, c0, c1) =>
        {
            var target = sums.AsSpan(c0..c1);
            for (int r = 0; r < rows; r++) Elementwise.AddInPlace(target, x.AsSpan(r * cols + c0, c1 - c0));
        });
    }
}

/// <summary>Overwrites dx with a gradient contribution to the elements [start, end).</summary>
internal delegate void ContributionWriter(int start, int end, Span<float> dx);
