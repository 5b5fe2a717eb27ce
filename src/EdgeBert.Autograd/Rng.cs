namespace EdgeBert.Autograd;

/// <summary>SplitMix64: a tiny seeded generator whose whole state is one ulong, so a training run
/// can save and restore it for a bit-exact --resume.</summary>
public sealed class Rng(ulong seed)
{
    /// <summary>The complete generator state.</summary>
    public ulong State { get; set; } = seed;

    const ulong Increment = 0x9E3779B97F4A7C15UL;

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64() => Mix(State += Increment);

    /// <summary>Advances past <paramref name="draws"/> draws at once and returns the state before, from
    /// which <see cref="Draw"/> gives each of them (so they can be made in parallel).</summary>
    public ulong Skip(long draws)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(draws);
        ulong start = State;
        State += (ulong)draws * Increment;
        return start;
    }

    /// <summary>The value the <paramref name="index"/>-th NextUInt64 after state <paramref
    /// name="start"/> returns.</summary>
    public static ulong Draw(ulong start, long index) => Mix(start + (ulong)(index + 1) * Increment);

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, bound), without modulo bias.</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        ulong limit = ulong.MaxValue - ulong.MaxValue % (ulong)bound;
        ulong x;
        do x = NextUInt64(); while (x >= limit);
        return (int)(x % (ulong)bound);
    }

    /// <summary>Standard normal (Box-Muller, one value per call).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1], keeps log finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
