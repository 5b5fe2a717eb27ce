namespace EdgeBert.Autograd;

/// <summary>Learning-rate factor rising linearly from 0 to 1 over the warm-up steps, then falling
/// linearly to 0 at the last step (the BERT fine-tuning schedule, same convention as
/// HuggingFace's linear schedule: the update of step s uses Factor(s), s counted from 0).</summary>
public sealed class LinearWarmupDecay
{
    /// <summary>A schedule that warms up over <paramref name="warmupSteps"/> and ends at 0 after
    /// <paramref name="totalSteps"/>.</summary>
    public LinearWarmupDecay(long warmupSteps, long totalSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalSteps);
        if (warmupSteps > totalSteps)
            throw new ArgumentException($"warm-up ({warmupSteps} steps) longer than training ({totalSteps} steps)");
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
    }

    /// <summary>Warm-up as a fraction of the total steps (the --warmup option).</summary>
    public static LinearWarmupDecay FromFraction(double warmupFraction, long totalSteps)
    {
        if (!(warmupFraction >= 0 && warmupFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(warmupFraction), warmupFraction,
                "warm-up fraction must be in [0, 1]");
        return new LinearWarmupDecay((long)Math.Round(warmupFraction * totalSteps), totalSteps);
    }

    /// <summary>Steps of linear warm-up from 0.</summary>
    public long WarmupSteps { get; }
    /// <summary>The step at which the factor reaches 0.</summary>
    public long TotalSteps { get; }

    /// <summary>The learning-rate multiplier at <paramref name="step"/>, in [0, 1].</summary>
    public float Factor(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < WarmupSteps) return (float)((double)step / WarmupSteps);
        return (float)Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
    }
}
