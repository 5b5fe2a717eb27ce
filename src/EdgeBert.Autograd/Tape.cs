using EdgeBert.Kernels;

namespace EdgeBert.Autograd;

/// <summary>Reverse-mode autograd recorder: every op run while <see cref="IsRecording"/> appends a
/// backward step; <see cref="Backward(Tensor)"/> runs them in reverse order, each accumulating into
/// the gradients of its inputs. Steps hold the forward's tensors, so a tape is consumed by
/// Backward (or dropped by <see cref="Reset"/>) to let them be collected.</summary>
public sealed class Tape
{
    readonly List<Action> _steps = [];

    readonly TensorArena? _arena;

    /// <summary>A tape on <paramref name="arena"/> reuses the buffers of the previous tape made on it
    /// (whose tensors become invalid), see <see cref="TensorArena"/>.</summary>
    public Tape(WorkerPool? pool = null, TensorArena? arena = null)
    {
        Pool = pool;
        _arena = arena;
        arena?.Recycle();
    }

    /// <summary>Threads for GEMM and attention; null runs everything on the calling thread.</summary>
    public WorkerPool? Pool { get; }

    /// <summary>False for evaluation: ops compute the forward pass only and record nothing.</summary>
    public bool IsRecording { get; set; } = true;

    /// <summary>Number of recorded backward steps.</summary>
    public int Count => _steps.Count;

    // Public so that ops of a later layer (the token gates in Model) are written like the ones here.
    /// <summary>Whether an op with these inputs must record a backward step.</summary>
    public bool Tracks(Tensor a) => IsRecording && a.RequiresGrad;
    /// <summary>Whether an op with these inputs must record a backward step.</summary>
    public bool Tracks(Tensor a, Tensor? b) => IsRecording && (a.RequiresGrad || b is { RequiresGrad: true });
    /// <summary>Whether an op with these inputs must record a backward step.</summary>
    public bool Tracks(Tensor a, Tensor? b, Tensor? c) => Tracks(a, b) || (IsRecording && c is { RequiresGrad: true });

    /// <summary>Adds an op's backward step; steps run in reverse order.</summary>
    public void Record(Action backward) => _steps.Add(backward);

    /// <summary>A buffer for an op's output or scratch, zeroed if <paramref name="clear"/> (otherwise
    /// the op must overwrite every element).</summary>
    internal float[] NewBuffer(int length, bool clear) => _arena?.Rent(length, clear) ?? new float[length];

    /// <summary>An op's output tensor; its gradient comes from the same arena.</summary>
    public Tensor NewTensor(bool clear, params int[] shape)
    {
        long count = 1;
        foreach (int d in shape) count *= d;
        return new Tensor(NewBuffer(checked((int)count), clear), shape) { Arena = _arena };
    }

    /// <summary>Seeds dL/dloss = 1 for a scalar loss and back-propagates.</summary>
    public void Backward(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.Length != 1) throw new ArgumentException($"Backward(loss) needs a scalar, got {loss}");
        Backward(loss, [1f]);
    }

    /// <summary>Adds <paramref name="seed"/> to root's gradient and back-propagates: the gradient of
    /// sum(seed * root) w.r.t. every tracked tensor. The tape is empty afterwards.</summary>
    public void Backward(Tensor root, ReadOnlySpan<float> seed)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (seed.Length != root.Length)
            throw new ArgumentException($"seed has {seed.Length} values, {root} has {root.Length}");
        Elementwise.AddInPlace(root.EnsureGrad(), seed);
        for (int i = _steps.Count - 1; i >= 0; i--) _steps[i]();
        _steps.Clear();
    }

    /// <summary>Forgets the recorded steps without running them.</summary>
    public void Reset() => _steps.Clear();
}
