namespace EdgeBert.Autograd;

/// <summary>Parameters that share a learning rate, a weight decay and an optional projection
/// applied after every optimizer step (e.g. clipping gates to [0, 1]).</summary>
public sealed class ParameterGroup
{
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

    public string Name { get; }
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>The peak learning rate; the schedule's factor multiplies it at every step.</summary>
    public float LearningRate { get; set; }

    /// <summary>Decoupled weight decay (0 for biases, LayerNorm weights and gates).</summary>
    public float WeightDecay { get; }

    public Action<Span<float>>? Projection { get; }
}
