using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>What <see cref="ClassifierOptions"/> and <see cref="EmbedderOptions"/> share: how a call runs.</summary>
public abstract record TextModelOptions
{
    /// <summary>Threads each call may use (default 1). Concurrent calls add their own threads on top.</summary>
    public int Threads { get; init; } = 1;
    /// <summary>FP32 or INT8 linear layers; default: the model's own (config.json "precision").</summary>
    public Precision? Precision { get; init; }
    /// <summary>Sequences per forward pass in the batch overloads (default 16).</summary>
    public int BatchSize { get; init; } = 16;

    internal virtual void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1, nameof(BatchSize));
    }
}
