namespace EdgeBert.Autograd;

/// <summary>Learning-rate factor rising linearly from 0 to 1 over the warm-up steps, then falling
/// linearly to 0 at the last step (the BERT fine-tuning schedule, same convention as
/// HuggingFace's linear schedule: the update of step s uses Factor(s), s counted from 0).</summary>
public sealed class LinearWarmupDecay
{
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

    public long WarmupSteps { get; }
    public long TotalSteps { get; }

    public float Factor(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (step < WarmupSteps) return (float)((double)step / WarmupSteps);
        return (float)Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
    }
}
