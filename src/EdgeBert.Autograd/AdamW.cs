using System.Numerics;
using EdgeBert.Kernels;

namespace EdgeBert.Autograd;

/// <summary>The optimizer state a checkpoint must keep for a bit-exact resume: the step count and
/// both moments of every parameter, in group order then parameter order.</summary>
public sealed record AdamWState(long Step, float[][] FirstMoments, float[][] SecondMoments);

/// <summary>Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW:
/// p -= lr wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
/// p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps). A parameter without a gradient
/// is left untouched (neither decayed nor moved).</summary>
public sealed class AdamW
{
    readonly Tensor[] _parameters;
    readonly ParameterGroup[] _groupOf;
    readonly float[][] _m, _v;
    readonly (int Parameter, int Start, int End)[] _slices;

    /// <summary>Creates the optimizer over the groups' parameters, with the moment decays and epsilon of Adam.
    /// </summary>
    public AdamW(IEnumerable<ParameterGroup> groups, float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            throw new ArgumentOutOfRangeException(nameof(beta1), "betas must be in [0, 1)");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(epsilon);
        Groups = groups.ToArray();
        var parameters = new List<Tensor>();
        var groupOf = new List<ParameterGroup>();
        foreach (var group in Groups)
            foreach (var p in group.Parameters)
            {
                if (parameters.Contains(p))
                    throw new ArgumentException($"parameter {p} appears in more than one place");
                parameters.Add(p);
                groupOf.Add(group);
            }
        _parameters = [.. parameters];
        _groupOf = [.. groupOf];
        _m = _parameters.Select(p => new float[p.Length]).ToArray();
        _v = _parameters.Select(p => new float[p.Length]).ToArray();
        _slices = Slices(_parameters);
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
    }

    /// <summary>The parameter groups, each with its learning rate and weight decay.</summary>
    public IReadOnlyList<ParameterGroup> Groups { get; }
    /// <summary>Every parameter of every group.</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;
    /// <summary>Decay of the first moment (Adam's beta1).</summary>
    public float Beta1 { get; }
    /// <summary>Decay of the second moment (Adam's beta2).</summary>
    public float Beta2 { get; }
    /// <summary>Added to the root of the second moment before dividing.</summary>
    public float Epsilon { get; }

    /// <summary>Number of updates done so far.</summary>
    public long Step { get; private set; }

    /// <summary>One update of every parameter with a gradient, at each group's learning rate times
    /// <paramref name="learningRateFactor"/> (the schedule's factor), then the groups' projections.
    /// A pool spreads the update over its threads (same result).</summary>
    public void Update(float learningRateFactor = 1f, WorkerPool? pool = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(learningRateFactor);
        Step++;
        double correction1 = 1.0 - Math.Pow(Beta1, Step);
        double correction2Sqrt = Math.Sqrt(1.0 - Math.Pow(Beta2, Step));
        float b1 = Beta1, b2 = Beta2, eps = Epsilon;
        float rootCorrection = (float)correction2Sqrt;
        // Element-wise, so any split of the parameters into slices gives the same values.
        ForEachSlice(pool, (i, start, end) =>
        {
            var p = _parameters[i];
            if (p.Grad is not { } g) return;
            var group = _groupOf[i];
            float lr = group.LearningRate * learningRateFactor;
            float decay = 1f - lr * group.WeightDecay;
            float stepSize = (float)(lr / correction1);
            UpdateValues(p.Data.AsSpan(start..end), g.AsSpan(start..end), _m[i].AsSpan(start..end),
                _v[i].AsSpan(start..end), b1, b2, eps, decay, stepSize, rootCorrection);
        });
        for (int i = 0; i < _parameters.Length; i++)
            if (_parameters[i].Grad is not null) _groupOf[i].Projection?.Invoke(_parameters[i].Data);
    }

    /// <summary>Calls body(parameter index, start, end) for every slice of at most
    /// <see cref="ParallelChunks.ElementGrain"/> values of every parameter, spread over the pool.</summary>
    void ForEachSlice(WorkerPool? pool, Action<int, int, int> body) =>
        ParallelChunks.Run(pool, _slices.Length, 1, (_, first, last) =>
        {
            for (int s = first; s < last; s++) body(_slices[s].Parameter, _slices[s].Start, _slices[s].End);
        });

    static (int Parameter, int Start, int End)[] Slices(Tensor[] parameters)
    {
        var slices = new List<(int, int, int)>();
        for (int i = 0; i < parameters.Length; i++)
            for (int start = 0; start < parameters[i].Length; start += ParallelChunks.ElementGrain)
                slices.Add((i, start, Math.Min(parameters[i].Length, start + ParallelChunks.ElementGrain)));
        return [.. slices];
    }

    /// <summary>The element-wise AdamW update. The vector body and the scalar tail do the same IEEE
    /// operations in the same order (no fused multiply-add), so results do not depend on the vector width.</summary>
    static void UpdateValues(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float b1, float b2, float eps, float decay, float stepSize, float rootCorrection)
    {
        int k = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<float>.Count;
            var vb1 = new Vector<float>(b1);
            var vb2 = new Vector<float>(b2);
            var va1 = new Vector<float>(1f - b1);
            var va2 = new Vector<float>(1f - b2);
            var vEps = new Vector<float>(eps);
            var vDecay = new Vector<float>(decay);
            var vStep = new Vector<float>(stepSize);
            var vRoot = new Vector<float>(rootCorrection);
            for (; k + width <= w.Length; k += width)
            {
                var gk = new Vector<float>(g[k..]);
                var mk = vb1 * new Vector<float>(m[k..]) + va1 * gk;
                var vk = vb2 * new Vector<float>(v[k..]) + va2 * gk * gk;
                var denominator = Vector.SquareRoot(vk) / vRoot + vEps;
                var wk = new Vector<float>(w[k..]) * vDecay - vStep * mk / denominator;
                mk.CopyTo(m[k..]);
                vk.CopyTo(v[k..]);
                wk.CopyTo(w[k..]);
            }
        }
        for (; k < w.Length; k++)
        {
            float gk = g[k];
            m[k] = b1 * m[k] + (1f - b1) * gk;
            v[k] = b2 * v[k] + (1f - b2) * gk * gk;
            float denominator = MathF.Sqrt(v[k]) / rootCorrection + eps;
            w[k] = w[k] * decay - stepSize * m[k] / denominator;
        }
    }

    /// <summary>Zeroes every parameter's gradient (keeping the buffers), spread over the pool if given.</summary>
    public void ZeroGrad(WorkerPool? pool = null) =>
        ForEachSlice(pool, (i, start, end) => _parameters[i].Grad?.AsSpan(start..end).Clear());

    /// <summary>Clips the gradients of all parameters to a global L2 norm of at most maxNorm and
    /// returns the norm before clipping.</summary>
    public float ClipGradientNorm(float maxNorm) => GradientClipping.ClipByGlobalNorm(_parameters, maxNorm);

    /// <summary>A deep copy of the step and moments.</summary>
    public AdamWState ExportState() =>
        new(Step, _m.Select(a => (float[])a.Clone()).ToArray(), _v.Select(a => (float[])a.Clone()).ToArray());

    /// <summary>Restores a state exported by an optimizer over parameters of the same shapes.</summary>
    public void ImportState(AdamWState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(state.Step);
        if (state.FirstMoments.Length != _parameters.Length || state.SecondMoments.Length != _parameters.Length)
            throw new ArgumentException($"state has {state.FirstMoments.Length} moments, "
                + $"the optimizer {_parameters.Length} parameters");
        for (int i = 0; i < _parameters.Length; i++)
            if (state.FirstMoments[i].Length != _parameters[i].Length
                || state.SecondMoments[i].Length != _parameters[i].Length)
                throw new ArgumentException($"state moments of parameter {i} do not match {_parameters[i]}");
        for (int i = 0; i < _parameters.Length; i++)
        {
            state.FirstMoments[i].CopyTo(_m[i], 0);
            state.SecondMoments[i].CopyTo(_v[i], 0);
        }
        Step = state.Step;
    }
}

/// <summary>Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.</summary>
public static class GradientClipping
{
    /// <summary>Global L2 norm of all gradients (accumulated in double, in parameter order, so it is
    /// deterministic); when above maxNorm every gradient is scaled by maxNorm / (norm + 1e-6).
    /// Returns the norm before clipping.</summary>
    public static float ClipByGlobalNorm(IEnumerable<Tensor> parameters, float maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNorm);
        var grads = parameters.Select(p => p.Grad).OfType<float[]>().ToArray();
        double squares = 0;
        foreach (var g in grads) squares += Elementwise.Dot(g, g);
        float norm = (float)Math.Sqrt(squares);
        float scale = (float)(maxNorm / (norm + 1e-6));
        if (scale < 1f)
            foreach (var g in grads) Elementwise.Scale(g, scale, g);
        return norm;
    }
}
