using EdgeBert.Kernels;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeBert.Tests;

public class GemmTests : IDisposable
{
    readonly WorkerPool _twoThreads = new(2);

    public void Dispose() => _twoThreads.Dispose();

    [Property(MaxTest = 40)]
    public Property MatchesDoubleReferenceOnEveryIsa() => Prop.ForAll(GemmTestSupport.Cases(), c =>
    {
        float[] a = c.A, b = c.B, c0 = c.C0, bias = c.BiasValues;
        var reference = GemmReference.Multiply(c.M, c.N, c.K, a, c.Lda, c.TransA, b, c.Ldb, c.TransB, c0, c.Ldc,
            c.Accumulate, bias);
        GemmTestSupport.ForEachIsa(isa =>
        {
            var result = (float[])c0.Clone();
            Gemm.Multiply(c.M, c.N, c.K, a, c.Lda, c.TransA, b, c.Ldb, c.TransB, result, c.Ldc, c.Accumulate, bias,
                pool: c.Seed % 2 == 0 ? _twoThreads : null, isa: isa);
            double error = GemmTestSupport.RelativeError(result, c.Ldc, reference, c.M, c.N);
            Assert.True(error <= GemmTestSupport.Tolerance(c.K), $"{isa}: relative error {error:E2} for {c}");
            AssertPaddingUntouched(result, c0, c.M, c.N, c.Ldc);
        });
    });

    [Property(MaxTest = 25)]
    public Property GeluEpilogueIsGeluOfTheFinishedProduct() => Prop.ForAll(GemmTestSupport.Cases(), c =>
    {
        float[] a = c.A, b = c.B, c0 = c.C0, bias = c.BiasValues;
        var reference = GemmReference.Multiply(c.M, c.N, c.K, a, c.Lda, c.TransA, b, c.Ldb, c.TransB, c0, c.Ldc,
            c.Accumulate, bias, GemmEpilogue.Gelu);
        var product = GemmReference.Multiply(c.M, c.N, c.K, a, c.Lda, c.TransA, b, c.Ldb, c.TransB, c0, c.Ldc,
            c.Accumulate, bias);
        // GELU's own error is absolute (erf's 1e-6 times |x| / 2), so it is measured against the size of the
        // product it is applied to: relative to GELU's output it explodes where that output is near 0 (x << 0).
        double productNorm = Math.Sqrt(product.Sum(v => v * v));
        GemmTestSupport.ForEachIsa(isa =>
        {
            var fused = (float[])c0.Clone();
            Gemm.Multiply(c.M, c.N, c.K, a, c.Lda, c.TransA, b, c.Ldb, c.TransB, fused, c.Ldc, c.Accumulate, bias,
                GemmEpilogue.Gelu, _twoThreads, isa);
            var separate = (float[])c0.Clone();
            Gemm.Multiply(c.M, c.N, c.K, a, c.Lda, c.TransA, b, c.Ldb, c.TransB, separate, c.Ldc, c.Accumulate, bias,
                isa: isa);
            for (int i = 0; i < c.M; i++)
            {
                var row = separate.AsSpan(i * c.Ldc, c.N);
                Activations.Gelu(row, row, isa);
            }
            // Fusing must not change a single bit; the GELU itself is allowed its own 1e-6 error in erf.
            Assert.Equal(separate, fused);
            double squares = 0;
            for (int i = 0; i < c.M; i++)
                for (int j = 0; j < c.N; j++)
                    squares += Math.Pow(fused[i * c.Ldc + j] - reference[i * c.N + j], 2);
            double error = Math.Sqrt(squares) / productNorm;
            Assert.True(error <= GemmTestSupport.Tolerance(c.K) + 2e-6, $"{isa}: error {error:E2} for {c}");
        });
    });

    [Property(MaxTest = 25)]
    public Property PackedWeightGivesTheSameBitsAsTheUnpackedProduct() => Prop.ForAll(GemmTestSupport.Cases(), c =>
    {
        // The forward-pass layout: A [m, k] not transposed, weight [n, k].
        float[] a = c.A, c0 = c.C0, bias = c.BiasValues;
        float[] weight = GemmTestSupport.Random(c.N * c.K, c.Seed + 7);
        int lda = c.K + c.PadA;
        a = GemmTestSupport.Random(c.M * lda, c.Seed);
        var reference = GemmReference.Multiply(c.M, c.N, c.K, a, lda, false, weight, c.K, true, c0, c.Ldc,
            c.Accumulate, bias);
        GemmTestSupport.ForEachIsa(isa =>
        {
            // Packed for each path's panel width; the product runs the path the weight was packed for.
            var packed = PackedWeight.FromLinear(weight, c.N, c.K, isa);
            Assert.Equal(c.N, packed.OutFeatures);
            Assert.Equal(c.K, packed.InFeatures);
            Assert.Equal(isa, packed.Isa);
            var viaPacked = (float[])c0.Clone();
            Gemm.Multiply(c.M, a, lda, packed, viaPacked, c.Ldc, c.Accumulate, bias, pool: _twoThreads);
            var viaSpans = (float[])c0.Clone();
            Gemm.Multiply(c.M, c.N, c.K, a, lda, false, weight, c.K, true, viaSpans, c.Ldc, c.Accumulate, bias,
                isa: isa);
            Assert.Equal(viaSpans, viaPacked);
            double error = GemmTestSupport.RelativeError(viaPacked, c.Ldc, reference, c.M, c.N);
            Assert.True(error <= GemmTestSupport.Tolerance(c.K), $"{isa}: relative error {error:E2} for {c}");
        });
    });

    [Fact]
    public void WidePackedWeightIsDoneInColumnBlocksWithTheSameBits() =>
        // Wider than two column blocks of a pre-packed B (NcPacked) and not a multiple of one, on one thread
        // (one part spans every column) and on two, with bias and the GELU epilogue.
        PackedWeightMatchesTheUnpackedPathBitForBit(m: 70, n: 2 * GemmJob.NcPacked + 96, k: 200, seed: 3);

    [Fact]
    public void TallProductWithAPackedWeightGoesPanelByPanelWithTheSameBits() =>
        // More rows than GemmJob.TallRows (A panel by A panel over the B block), with an edge row tile, an edge column
        // panel and two k blocks; the unpacked-B path keeps the usual order.
        PackedWeightMatchesTheUnpackedPathBitForBit(m: GemmJob.TallRows + 18, n: GemmJob.NcPacked + 40,
            k: GemmJob.KcMax + 50, seed: 6);

    [Fact]
    public void LargePackedWeightInHugePageMemoryComputesTheSameBits() =>
        // Panels just over PanelMemory's threshold (native memory aligned to 2 MB), for every ISA's layout.
        PackedWeightMatchesTheUnpackedPathBitForBit(m: 20,
            n: (int)(PanelMemory.HugePageBytes / sizeof(float) / 700) + 40, k: 700, seed: 9);

    /// <summary>C = A W^T + bias through GELU with W pre-packed, on one and two threads under every ISA: the same
    /// bits as the unpacked-B path, and within the K-scaled tolerance of the double reference.</summary>
    void PackedWeightMatchesTheUnpackedPathBitForBit(int m, int n, int k, int seed)
    {
        float[] a = GemmTestSupport.Random(m * k, seed), weight = GemmTestSupport.Random(n * k, seed + 1),
            bias = GemmTestSupport.Random(n, seed + 2);
        var reference = GemmReference.Multiply(m, n, k, a, k, false, weight, k, true, [], n, bias: bias,
            epilogue: GemmEpilogue.Gelu);
        GemmTestSupport.ForEachIsa(isa =>
        {
            var packed = PackedWeight.FromLinear(weight, n, k, isa);
            var viaSpans = new float[m * n];
            Gemm.Multiply(m, n, k, a, k, false, weight, k, true, viaSpans, n, bias: bias, epilogue: GemmEpilogue.Gelu,
                isa: isa);
            foreach (var pool in new[] { null, _twoThreads })
            {
                var viaPacked = new float[m * n];
                Gemm.Multiply(m, a, k, packed, viaPacked, n, bias: bias, epilogue: GemmEpilogue.Gelu, pool: pool);
                Assert.Equal(viaSpans, viaPacked);
                double error = GemmTestSupport.RelativeError(viaPacked, n, reference, m, n);
                Assert.True(error <= GemmTestSupport.Tolerance(k), $"{isa}: relative error {error:E2}");
            }
        });
    }

    [Fact]
    public void LargeKAndRowChunksStayWithinTheScaledTolerance()
    {
        // 700 x 3100 is more A than one packed chunk holds, so the rows are done in two chunks.
        const int m = 700, n = 37, k = 3100;
        float[] a = GemmTestSupport.Random(m * k, 1), b = GemmTestSupport.Random(k * n, 2);
        var reference = GemmReference.Multiply(m, n, k, a, k, false, b, n, false, [], n);
        GemmTestSupport.ForEachIsa(isa =>
        {
            var c = new float[m * n];
            Gemm.Multiply(m, n, k, a, k, false, b, n, false, c, n, pool: _twoThreads, isa: isa);
            double error = GemmTestSupport.RelativeError(c, n, reference, m, n);
            Assert.True(error <= GemmTestSupport.Tolerance(k), $"{isa}: relative error {error:E2}");
        });
    }

    [Fact]
    public void TinyShapesAndEmptyProducts()
    {
        GemmTestSupport.ForEachIsa(isa =>
        {
            // 1x1x1 with bias and accumulate: 5 + 2*3 + 0.5
            var c = new float[] { 5f };
            Gemm.Multiply(1, 1, 1, [2f], 1, false, [3f], 1, false, c, 1, accumulate: true, bias: [0.5f], isa: isa);
            Assert.Equal(11.5f, c[0]);

            // k = 0: only bias (and accumulation) remain.
            var d = new float[] { 9f, 9f, 9f, 9f };
            Gemm.Multiply(2, 2, 0, [], 0, false, [], 2, false, d, 2, bias: [1f, -2f], isa: isa);
            Assert.Equal([1f, -2f, 1f, -2f], d);

            // m = 0 and n = 0 touch nothing.
            var e = new float[] { 4f };
            Gemm.Multiply(0, 1, 3, [], 3, false, [1f, 1f, 1f], 1, false, e, 1, isa: isa);
            Gemm.Multiply(1, 0, 3, [1f, 1f, 1f], 3, false, [], 0, false, e, 1, isa: isa);
            Assert.Equal(4f, e[0]);
        });
    }

    [Fact]
    public void RejectsOperandsThatDoNotFit()
    {
        var c = new float[4];
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(2, 2, 2, new float[3], 2, false, new float[4], 2, false,
            c, 2));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(2, 2, 2, new float[4], 1, false, new float[4], 2, false,
            c, 2));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(2, 2, 2, new float[4], 2, false, new float[4], 2, false,
            c, 2, bias: new float[1]));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(2, 2, 2, new float[4], 2, false, new float[4], 2, false,
            new float[3], 2));
        Assert.Throws<ArgumentException>(() => PackedWeight.FromLinear(new float[5], 2, 3));
        var w = PackedWeight.FromLinear(new float[6], 2, 3);
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(2, new float[5], 3, w, c, 2));
    }

    static void AssertPaddingUntouched(float[] result, float[] original, int m, int n, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc && i * ldc + j < result.Length; j++)
                Assert.Equal(original[i * ldc + j], result[i * ldc + j]);
    }
}
