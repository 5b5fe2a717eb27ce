namespace EdgeBert.Autograd;

/// <summary>Parameters that share a learning rate, a weight decay and an optional projection
/// applied after every optimizer step (e.g. clipping gates to [0, 1]).</summary>
public sealed class ParameterGroup
{
    /// <summary>A group of <paramref name="parameters"/> trained at one learning rate and weight decay;
    /// <paramref name="projection"/> runs on each parameter after every step.</summary>
    public ParameterGroup(string name, IEnumerable<Tensor> parameters, float learningRate, float weightDecay = 0f,
        Action<Span<float>>? projection = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegative(learningRate);
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        Name = name;
        Parameters = parameters.ToArray();
        LearningRate = learningRate;
        WeightDecay = weightDecay;
        Projection = projection;
    }

    /// <summary>The group's name in logs and checkpoints.</summary>
    public string Name { get; }
    /// <summary>The tensors the optimizer updates.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>The peak learning rate; the schedule's factor multiplies it at every step.</summary>
    public float LearningRate { get; set; }

    /// <summary>Decoupled weight decay (0 for biases, LayerNorm weights and gates).</summary>
    public float WeightDecay { get; }

    /// <summary>Applied to each parameter's values after every step, or null.</summary>
    public Action<Span<float>>? Projection { get; }
}
