using EdgeBert.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeBert.Tests;

/// <summary>One random INT8 GEMM problem (C = A W^T), with the seed of its data.</summary>
public sealed record Int8Case(int M, int N, int K, int PadA, int PadC, bool Bias, bool Accumulate, int Seed)
{
    public int Lda => K + PadA;
    public int Ldc => N + PadC;

    public override string ToString() =>
        $"m={M} n={N} k={K} pads=({PadA},{PadC}) bias={Bias} accumulate={Accumulate} seed={Seed}";
}

[Collection("IsaState")]
public class Int8GemmTests : IDisposable
{
    readonly WorkerPool _twoThreads = new(2);

    public void Dispose() => _twoThreads.Dispose();

    static Arbitrary<Int8Case> Cases()
    {
        var bools = Gen.Elements(false, true);
        var pads = Gen.Elements(0, 0, 1, 5);
        var gen =
            from m in GemmTestSupport.Size
            from n in GemmTestSupport.Size
            from k in GemmTestSupport.Size
            from padA in pads
            from padC in pads
            from bias in bools
            from accumulate in bools
            from seed in Gen.Choose(0, 1_000_000)
            select new Int8Case(m, n, k, padA, padC, bias, accumulate, seed);
        return Arb.From(gen);
    }

    /// <summary>Integers in [-127, 127] whose rows each hold a +-127, so both quantizers keep them as they are
    /// (scale 127 / 127 = 1) and C = (float)acc: every integer sum of k &lt;= 300 terms is exact in float.</summary>
    static float[] IntegerRows(int rows, int cols, int ld, Random random)
    {
        var x = new float[rows * ld];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) x[i * ld + j] = random.Next(-127, 128);
            x[i * ld + random.Next(cols)] = random.Next(2) == 0 ? 127 : -127;
        }
        return x;
    }

    [Property(MaxTest = 40)]
    public Property IntegerProductIsExactOnEveryPath() => Prop.ForAll(Cases(), c =>
    {
        var random = new Random(c.Seed);
        float[] a = IntegerRows(c.M, c.K, c.Lda, random), weight = IntegerRows(c.N, c.K, c.K, random);
        var expected = new float[c.M * c.Ldc];
        for (int i = 0; i < c.M; i++)
            for (int j = 0; j < c.N; j++)
            {
                long sum = 0;
                for (int p = 0; p < c.K; p++) sum += (long)a[i * c.Lda + p] * (long)weight[j * c.K + p];
                expected[i * c.Ldc + j] = sum;
            }
        foreach (var path in Int8Paths.Supported)
        {
            var w = QuantizedWeight.FromLinear(weight, c.N, c.K, path);
            Assert.All(w.Scales.ToArray(), s => Assert.Equal(1f, s));
            var values = new sbyte[c.N * c.K];
            w.CopyValuesTo(values);
            Assert.Equal(weight.Select(x => (sbyte)x), values);
            var result = new float[c.M * c.Ldc];
            Int8Gemm.Multiply(c.M, a, c.Lda, w, result, c.Ldc, pool: c.Seed % 2 == 0 ? _twoThreads : null);
            Assert.True(expected.SequenceEqual(result), $"{path}: integer product differs for {c}");
        }
    });

    /// <summary>The documented float operations, from an independent quantization in plain loops.</summary>
    static void Reference(Int8Case c, float[] a, float[] weight, float[] bias, float[] result)
    {
        var (qw, sw) = QuantizeRows(weight, c.N, c.K, c.K);
        var (qa, sa) = QuantizeRows(a, c.M, c.K, c.Lda);
        for (int i = 0; i < c.M; i++)
            for (int j = 0; j < c.N; j++)
            {
                long acc = 0;
                for (int p = 0; p < c.K; p++) acc += qa[i * c.K + p] * qw[j * c.K + p];
                float v = (float)acc * (sa[i] * sw[j]);
                if (c.Accumulate) v = v + result[i * c.Ldc + j];
                if (c.Bias) v = v + bias[j];
                result[i * c.Ldc + j] = v;
            }
    }

    static (int[] Values, float[] Scales) QuantizeRows(float[] x, int rows, int cols, int ld)
    {
        var q = new int[rows * cols];
        var scales = new float[rows];
        for (int i = 0; i < rows; i++)
        {
            float max = 0;
            for (int j = 0; j < cols; j++) max = Math.Max(max, Math.Abs(x[i * ld + j]));
            scales[i] = max == 0 ? 1f : max / 127f;
            for (int j = 0; j < cols; j++)
                q[i * cols + j] =
                    (int)Math.Clamp(MathF.Round(x[i * ld + j] / scales[i], MidpointRounding.ToEven), -127, 127);
        }
        return (q, scales);
    }

    [Property(MaxTest = 30)]
    public Property FloatOutputHasTheBitsOfTheDocumentedOperations() => Prop.ForAll(Cases(), c =>
    {
        float[] a = GemmTestSupport.Random(c.M * c.Lda, c.Seed), weight = GemmTestSupport.Random(c.N * c.K, c.Seed + 1);
        float[] c0 = GemmTestSupport.Random(c.M * c.Ldc, c.Seed + 2);
        float[] bias = c.Bias ? GemmTestSupport.Random(c.N, c.Seed + 3) : [];
        var expected = (float[])c0.Clone();
        Reference(c, a, weight, bias, expected);
        var twin = (float[])c0.Clone();
        var scalarWeight = QuantizedWeight.FromLinear(weight, c.N, c.K, Int8Path.Scalar);
        Int8GemmReference.Multiply(c.M, a, c.Lda, scalarWeight, twin, c.Ldc, c.Accumulate, bias);
        Assert.True(expected.SequenceEqual(twin), $"scalar twin differs for {c}");
        foreach (var path in Int8Paths.Supported)
        {
            var w = QuantizedWeight.FromLinear(weight, c.N, c.K, path);
            var result = (float[])c0.Clone();
            var pool = c.Seed % 2 == 0 ? _twoThreads : null;
            Int8Gemm.Multiply(c.M, a, c.Lda, w, result, c.Ldc, c.Accumulate, bias, pool: pool);
            // Bit for bit, padding between rows of C included (it must stay untouched).
            Assert.True(expected.SequenceEqual(result), $"{path}: differs from the documented operations for {c}");
            var fused = (float[])c0.Clone();
            Int8Gemm.Multiply(c.M, a, c.Lda, w, fused, c.Ldc, c.Accumulate, bias, GemmEpilogue.Gelu, _twoThreads);
            for (int i = 0; i < c.M; i++)
            {
                var row = result.AsSpan(i * c.Ldc, c.N);
                Activations.Gelu(row, row);
            }
            Assert.True(result.SequenceEqual(fused), $"{path}: fused GELU differs from GELU of the rows for {c}");
        }
    });

    [Property(MaxTest = 10)]
    public Property DequantizedProductIsCloseToTheFloatProduct() => Prop.ForAll(Cases(), c =>
    {
        // Guards the scales' meaning (not only their bits): per-row and per-column int8 keep C within a few percent.
        float[] a = GemmTestSupport.Random(c.M * c.Lda, c.Seed), weight = GemmTestSupport.Random(c.N * c.K, c.Seed + 1);
        var exact = GemmReference.Multiply(c.M, c.N, c.K, a, c.Lda, false, weight, c.K, true, [], c.Ldc);
        var result = new float[c.M * c.Ldc];
        Int8Gemm.Multiply(c.M, a, c.Lda, QuantizedWeight.FromLinear(weight, c.N, c.K), result, c.Ldc);
        double error = GemmTestSupport.RelativeError(result, c.Ldc, exact, c.M, c.N);
        Assert.True(error < 0.02, $"relative error {error:E2} for {c}");
    });

    [Fact]
    public void WeightQuantizationRoundsHalfToEvenPerOutputFeature()
    {
        // Row 0: max 127, so scale 1 and ties .5 go to the even neighbour; row 1: all zero (scale 1, values 0);
        // row 2: scale 0.5 / 127, the small value rounds to 1 of 127 of the maximum.
        float[] weight =
        [
            127f, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f,
            0, 0, 0, 0, 0, 0,
            -0.5f, 0.5f, 0.25f, 0.002f, 0.001f, 0,
        ];
        var w = QuantizedWeight.FromLinear(weight, 3, 6);
        Assert.Equal([1f, 1f, 0.5f / 127f], w.Scales.ToArray());
        var values = new sbyte[18];
        w.CopyValuesTo(values);
        sbyte[] expected = [127, 2, -4, 0, 0, 2, 0, 0, 0, 0, 0, 0, -127, 127, 64, 1, 0, 0];
        Assert.Equal(expected, values);
    }

    [Fact]
    public void ActivationQuantizationOfEveryLayoutMatchesPlainLoops()
    {
        var random = new Random(5);
        foreach (var path in Int8Paths.Supported)
        {
            var kernel = Int8MicroKernel.For(path);
            for (int k = 1; k <= 300; k++)
            {
                var x = new float[k];
                for (int i = 0; i < k; i++) x[i] = (float)(random.NextDouble() * 6 - 3);
                // Exact ties on the vector lanes as well as on the tail: a maximum of 127 gives scale 1.
                if (k % 3 == 0) for (int i = 0; i < k; i++) x[i] = (i % 7 - 3) + 0.5f;
                if (k % 3 == 0) x[k / 2] = 127f;
                // Near-ties at scale 3 / 127: x / scale lands within an ulp of j + 0.5, where only a true IEEE
                // division (not a multiply by the reciprocal, nor a different rounding) gives the plain loop's integer.
                if (k % 3 == 1)
                    for (int i = 0; i < k; i++)
                    {
                        float tie = (i * 37 % 254 - 127 + 0.5f) * (3f / 127f);
                        x[i] = (i % 3) switch { 0 => MathF.BitDecrement(tie), 1 => tie, _ => MathF.BitIncrement(tie) };
                    }
                if (k % 3 == 1) x[0] = 3f;
                if (k % 5 == 0) Array.Clear(x);
                var (expected, scales) = QuantizeRows(x, 1, k, k);
                int padded = (k + 3) / 4 * 4;
                var dest = new byte[padded * kernel.ElementBytes];
                Array.Fill(dest, (byte)0x55);
                float scale;
                unsafe
                {
                    fixed (float* px = x)
                    fixed (byte* pd = dest)
                        scale = Int8Quantization.Row(px, k, padded, pd, kernel);
                }
                Assert.Equal(scales[0], scale);
                for (int i = 0; i < padded; i++)
                {
                    int q = kernel.ElementBytes == 2 ? BitConverter.ToInt16(dest, 2 * i)
                        : kernel.ShiftedActivations ? dest[i] - 128 : (sbyte)dest[i];
                    int want = i < k ? expected[i] : 0;
                    Assert.True(want == q, $"{path} k={k} at {i}: {q}, expected {want}");
                }
            }
        }
    }

    [Fact]
    public void ExtremeValuesAtDepth3072NeitherSaturateNorOverflow()
    {
        // Rows of +-127 everywhere in every sign pattern: sums reach +-3072 * 127 * 127 (the u8 x s8 route holds
        // 255 * -127 products, its correction 128 * 3072 * 127). The extremes are multiples of 2^10, exact in float;
        // the others are compared after the one rounding the int32-to-float conversion makes as well.
        const int k = 3072, m = 7;
        var random = new Random(11);
        foreach (var path in Int8Paths.Supported)
        {
            int n = 3 * Int8MicroKernel.For(path).NR + 1;
            float[] a = ExtremeRows(m, k, random), weight = ExtremeRows(n, k, random);
            var result = new float[m * n];
            Int8Gemm.Multiply(m, a, k, QuantizedWeight.FromLinear(weight, n, k, path), result, n, pool: _twoThreads);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    long sum = 0;
                    for (int p = 0; p < k; p++) sum += (long)a[i * k + p] * (long)weight[j * k + p];
                    Assert.True(sum == result[i * n + j], $"{path} ({i},{j}): {result[i * n + j]}, expected {sum}");
                }
            Assert.Equal(127f * 127f * k, result.Max());
            Assert.Equal(-127f * 127f * k, result.Min());
        }
    }

    /// <summary>All +127, all -127, alternating, in blocks of 1024, then random signs.</summary>
    static float[] ExtremeRows(int rows, int cols, Random random)
    {
        var x = new float[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                x[i * cols + j] = 127f * (i % 5) switch
                {
                    0 => 1,
                    1 => -1,
                    2 => j % 2 == 0 ? 1 : -1,
                    3 => j / 1024 % 2 == 0 ? 1 : -1,
                    _ => random.Next(2) * 2 - 1,
                };
        return x;
    }

    [Fact]
    public void ZeroRowsGiveZeroProductsAndBias()
    {
        const int m = 5, n = 40, k = 33;
        float[] a = GemmTestSupport.Random(m * k, 1), weight = GemmTestSupport.Random(n * k, 2);
        float[] bias = GemmTestSupport.Random(n, 3);
        Array.Clear(a, 2 * k, k);
        Array.Clear(weight, 17 * k, k);
        foreach (var path in Int8Paths.Supported)
        {
            var w = QuantizedWeight.FromLinear(weight, n, k, path);
            Assert.Equal(1f, w.Scales[17]);
            var result = new float[m * n];
            Int8Gemm.Multiply(m, a, k, w, result, n, bias: bias);
            Assert.Equal(bias, result.AsSpan(2 * n, n).ToArray());
            for (int i = 0; i < m; i++) Assert.Equal(bias[17], result[i * n + 17]);
        }
    }

    [Fact]
    public void TwoThreadsGiveTheBitsOfOne()
    {
        const int m = 131, n = 397, k = 301;
        float[] a = GemmTestSupport.Random(m * k, 4), weight = GemmTestSupport.Random(n * k, 5);
        float[] bias = GemmTestSupport.Random(n, 6), c0 = GemmTestSupport.Random(m * n, 7);
        foreach (var path in Int8Paths.Supported)
        {
            var w = QuantizedWeight.FromLinear(weight, n, k, path);
            foreach (var epilogue in new[] { GemmEpilogue.None, GemmEpilogue.Gelu })
            {
                float[] one = (float[])c0.Clone(), two = (float[])c0.Clone();
                Int8Gemm.Multiply(m, a, k, w, one, n, accumulate: true, bias, epilogue);
                Int8Gemm.Multiply(m, a, k, w, two, n, accumulate: true, bias, epilogue, _twoThreads);
                Assert.True(one.SequenceEqual(two), $"{path} {epilogue}");
            }
        }
    }

    [Fact]
    public void CheckpointValuesRoundTripOnEveryPath()
    {
        const int n = 37, k = 45;
        var random = new Random(8);
        var values = new sbyte[n * k];
        for (int i = 0; i < values.Length; i++) values[i] = (sbyte)random.Next(-127, 128);
        var scales = Enumerable.Range(1, n).Select(i => i * 0.01f).ToArray();
        foreach (var path in Int8Paths.Supported)
        {
            var w = QuantizedWeight.FromQuantized(values, scales, n, k, path);
            Assert.Equal((n, k, path), (w.OutFeatures, w.InFeatures, w.Path));
            Assert.Equal(scales, w.Scales.ToArray());
            var back = new sbyte[n * k];
            w.CopyValuesTo(back);
            Assert.Equal(values, back);
        }
        // Deeper than MaxInFeatures the int32 sums could overflow, so such a weight is refused.
        int deep = QuantizedWeight.MaxInFeatures + 1;
        Assert.Throws<ArgumentException>(() => QuantizedWeight.FromQuantized(new sbyte[deep], [1f], 1, deep));
        values[3] = sbyte.MinValue;
        Assert.Throws<ArgumentException>(() => QuantizedWeight.FromQuantized(values, scales, n, k, Int8Path.Scalar));
    }

    [Fact]
    public void PathsAreNamedParsedAndCheckedAgainstTheCpu()
    {
        foreach (var path in Enum.GetValues<Int8Path>())
        {
            Assert.True(Int8Paths.TryParse(Int8Paths.Name(path).ToUpperInvariant(), out var parsed));
            Assert.Equal(path, parsed);
            if (!Int8Paths.IsSupported(path))
                Assert.Throws<PlatformNotSupportedException>(() => QuantizedWeight.FromLinear([1f], 1, 1, path));
        }
        Assert.False(Int8Paths.TryParse("avx10", out _));
        // EDGEBERT_INT8 values: blank keeps the best path, names are trimmed and case-blind, the rest throws.
        Assert.Null(Int8Paths.FromSetting(null));
        Assert.Null(Int8Paths.FromSetting("  "));
        Assert.Equal(Int8Path.Scalar, Int8Paths.FromSetting(" Scalar "));
        Assert.Throws<ArgumentException>(() => Int8Paths.FromSetting("avx10"));
        foreach (var path in Enum.GetValues<Int8Path>().Where(p => !Int8Paths.IsSupported(p)))
            Assert.Throws<PlatformNotSupportedException>(() => Int8Paths.FromSetting(Int8Paths.Name(path)));
        Assert.Contains(Int8Paths.Best, Int8Paths.Supported);
        Assert.Contains(Int8Path.Scalar, Int8Paths.Supported);
    }
}
