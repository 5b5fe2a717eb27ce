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
        if (bias is not null && bias.Length != outFeatures) throw new ArgumentException($"Linear bias {bias} does not have {outFeatures} values");
        int rows = x.Rows;
        var y = Tensor.Zeros(rows, outFeatures);
        Gemm.Multiply(rows, outFeatures, inFeatures, x.Data, inFeatures, false, weight.Data, inFeatures, true,
            y.Data, outFeatures, bias: bias is null ? default : bias.Data, pool: tape.Pool);
        if (!tape.Tracks(x, weight, bias)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            if (x.RequiresGrad) // dx[T, in] += dy[T, out] W[out, in]
                Gemm.Multiply(rows, inFeatures, outFeatures, dy, outFeatures, false, weight.Data, inFeatures, false,
                    x.EnsureGrad(), inFeatures, accumulate: true, pool: tape.Pool);
            if (weight.RequiresGrad) // dW[out, in] += dy^T x
                Gemm.Multiply(outFeatures, inFeatures, rows, dy, outFeatures, true, x.Data, inFeatures, false,
                    weight.EnsureGrad(), inFeatures, accumulate: true, pool: tape.Pool);
            if (bias is { RequiresGrad: true })
                Elementwise.AccumulateColumnSums(dy, rows, outFeatures, bias.EnsureGrad());
        });
        return y;
    }

    /// <summary>y[t] = table[ids[t]]: rows of a [V, H] table; the gradient is scatter-added back.</summary>
    public static Tensor EmbeddingGather(this Tape tape, Tensor table, int[] ids)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(ids);
        int vocab = table.Rows, width = table.Cols;
        var y = Tensor.Zeros(ids.Length, width);
        for (int t = 0; t < ids.Length; t++)
        {
            if ((uint)ids[t] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(ids), $"id {ids[t]} at {t} is outside [0, {vocab})");
            table.Data.AsSpan(ids[t] * width, width).CopyTo(y.Data.AsSpan(t * width, width));
        }
        if (!tape.Tracks(table)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dTable = table.EnsureGrad();
            for (int t = 0; t < ids.Length; t++) // in token order, so repeated ids sum deterministically
                Elementwise.AddInPlace(dTable.AsSpan(ids[t] * width, width), dy.AsSpan(t * width, width));
        });
        return y;
    }

    /// <summary>y[r] = x[rows[r]] (e.g. the [CLS] row of every sequence); the gradient is scatter-added.</summary>
    public static Tensor SelectRows(this Tape tape, Tensor x, int[] rows)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rows);
        int count = x.Rows, width = x.Cols;
        var y = Tensor.Zeros(rows.Length, width);
        for (int r = 0; r < rows.Length; r++)
        {
            if ((uint)rows[r] >= (uint)count) throw new ArgumentOutOfRangeException(nameof(rows), $"row {rows[r]} is outside [0, {count})");
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
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape)) throw new ArgumentException($"Add needs equal shapes, got {a} and {b}");
        var y = new Tensor(new float[a.Length], a.Shape);
        Elementwise.Add(a.Data, b.Data, y.Data);
        if (!tape.Tracks(a, b)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            if (a.RequiresGrad) Elementwise.AddInPlace(a.EnsureGrad(), dy);
            if (b.RequiresGrad) Elementwise.AddInPlace(b.EnsureGrad(), dy);
        });
        return y;
    }

    /// <summary>y = s * x.</summary>
    public static Tensor Scale(this Tape tape, Tensor x, float s)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = new Tensor(new float[x.Length], x.Shape);
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
        var y = new Tensor(new float[x.Length], x.Shape);
        bool track = tape.Tracks(x, gamma, beta);
        float[] mean = track ? new float[rows] : [], rstd = track ? new float[rows] : [];
        Kernels.LayerNorm.Forward(x.Data, y.Data, rows, cols, gamma.Data, beta.Data, eps, mean, rstd);
        if (!track) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dx = new float[x.Length]; // the kernel overwrites dx, the input's gradient must be added to
            var dGamma = gamma.RequiresGrad ? gamma.EnsureGrad() : new float[cols];
            var dBeta = beta.RequiresGrad ? beta.EnsureGrad() : new float[cols];
            Kernels.LayerNorm.Backward(x.Data, dy, gamma.Data, mean, rstd, rows, cols, dx, dGamma, dBeta);
            if (x.RequiresGrad) Elementwise.AddInPlace(x.EnsureGrad(), dx);
        });
        return y;
    }

    /// <summary>Exact (erf) GELU.</summary>
    public static Tensor Gelu(this Tape tape, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = new Tensor(new float[x.Length], x.Shape);
        Activations.Gelu(x.Data, y.Data);
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dx = new float[x.Length];
            Activations.GeluBackward(x.Data, dy, dx);
            Elementwise.AddInPlace(x.EnsureGrad(), dx);
        });
        return y;
    }

    /// <summary>Hyperbolic tangent (the pooler's activation).</summary>
    public static Tensor Tanh(this Tape tape, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = new Tensor(new float[x.Length], x.Shape);
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
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1)");
        if (!training || p == 0f) return x;
        var mask = new float[x.Length];
        float keepScale = 1f / (1f - p);
        // 24-bit uniforms, two per 64-bit draw; element i is dropped when u < p.
        uint threshold = (uint)Math.Round(p * (1 << 24));
        for (int i = 0; i < mask.Length; i += 2)
        {
            ulong bits = rng.NextUInt64();
            mask[i] = (uint)(bits >> 40) < threshold ? 0f : keepScale;
            if (i + 1 < mask.Length) mask[i + 1] = (uint)(bits >> 8 & 0xFFFFFF) < threshold ? 0f : keepScale;
        }
        var y = new Tensor(new float[x.Length], x.Shape);
        Elementwise.Multiply(x.Data, mask, y.Data);
        if (!tape.Tracks(x)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            var dx = new float[x.Length];
            Elementwise.Multiply(dy, mask, dx);
            Elementwise.AddInPlace(x.EnsureGrad(), dx);
        });
        return y;
    }
}
