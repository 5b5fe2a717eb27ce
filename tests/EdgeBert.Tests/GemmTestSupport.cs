using EdgeBert.Kernels;
using FsCheck;
using FsCheck.Fluent;

namespace EdgeBert.Tests;

/// <summary>One random GEMM problem: shapes, layout, options and the seed of its data.</summary>
public sealed record GemmCase(int M, int N, int K, bool TransA, bool TransB, int PadA, int PadB, int PadC,
    bool Bias, bool Accumulate, int Seed)
{
    public int Lda => (TransA ? M : K) + PadA;
    public int Ldb => (TransB ? K : N) + PadB;
    public int Ldc => N + PadC;
    public float[] A => GemmTestSupport.Random((TransA ? K : M) * Lda, Seed);
    public float[] B => GemmTestSupport.Random((TransB ? N : K) * Ldb, Seed + 1);
    public float[] C0 => GemmTestSupport.Random(M * Ldc, Seed + 2);
    public float[] BiasValues => Bias ? GemmTestSupport.Random(N, Seed + 3) : [];

    public override string ToString() =>
        $"m={M} n={N} k={K} transA={TransA} transB={TransB} pads=({PadA},{PadB},{PadC}) bias={Bias} "
        + $"accumulate={Accumulate} seed={Seed}";
}

public static class GemmTestSupport
{
    /// <summary>Sizes 1..300, with extra weight on tile edges and primes (1, 7, 31, 33, 97, 293, ...).</summary>
    public static readonly Gen<int> Size = Gen.Frequency(
        (3, Gen.Choose(1, 300)),
        (2, Gen.Elements(1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 32, 33, 48, 97, 127, 128, 129, 191, 193, 257, 293)));

    public static Arbitrary<GemmCase> Cases()
    {
        var bools = Gen.Elements(false, true);
        var pads = Gen.Elements(0, 0, 1, 5);
        var gen =
            from m in Size
            from n in Size
            from k in Size
            from transA in bools
            from transB in bools
            from padA in pads
            from padB in pads
            from padC in pads
            from bias in bools
            from accumulate in bools
            from seed in Gen.Choose(0, 1_000_000)
            select new GemmCase(m, n, k, transA, transB, padA, padB, padC, bias, accumulate, seed);
        return Arb.From(gen);
    }

    public static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>fp32 against a double reference: the error grows with K (about 5e-7 at K = 768, 1e-6 at
    /// 3072, DESIGN.md 7), so 1e-6 up to K = 768 and growing as sqrt(K) past it.</summary>
    public static double Tolerance(int k) => 1e-6 * Math.Max(1, Math.Sqrt(k / 768.0));

    /// <summary>||C - Cref|| / ||Cref|| over the m x n part of C (stored with ldc).</summary>
    public static double RelativeError(ReadOnlySpan<float> c, int ldc, double[] reference, int m, int n) =>
        ErrorNorm.Relative(c, ldc, reference, m, n);

    /// <summary>Runs body once per ISA path this CPU supports; it passes the path to the kernels.</summary>
    public static void ForEachIsa(Action<Isa> body)
    {
        foreach (var isa in IsaSelector.Supported) body(isa);
    }
}
