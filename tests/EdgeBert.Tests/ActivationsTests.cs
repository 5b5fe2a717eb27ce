using System.Runtime.Intrinsics;
using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class ActivationsTests
{
    [Theory]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(2.0, 0.9953222650189527)]
    [InlineData(3.0, 0.9999779095030014)]
    [InlineData(-1.5, -0.9661051464753108)]
    public void ReferenceErfMatchesPublishedValues(double x, double expected)
    {
        Assert.Equal(expected, KernelCheck.Erf(x), 1e-15);
    }

    [Fact]
    public void ErfWithinOneMillionthOverTheWholeFloatRange()
    {
        // A dense grid where erf bends, plus a stride over every bit pattern (all exponents, both signs).
        var inputs = new List<float>();
        for (int i = -70000; i <= 70000; i++) inputs.Add(i * 1e-4f);
        for (long bits = 0; bits <= uint.MaxValue; bits += 16411)
        {
            float f = BitConverter.UInt32BitsToSingle((uint)bits);
            if (!float.IsNaN(f)) inputs.Add(f);
        }
        inputs.AddRange([float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon, float.MaxValue,
            float.MinValue]);
        var x = inputs.ToArray();
        var expected = x.Select(v => KernelCheck.Erf(v)).ToArray();
        var y = new float[x.Length];
        KernelCheck.ForEachIsa(isa =>
        {
            Activations.Erf(x, y, isa);
            for (int i = 0; i < x.Length; i++)
                Assert.True(Math.Abs(y[i] - expected[i]) <= 1e-6,
                    $"{isa}: erf({x[i]:R}) = {y[i]:R}, expected {expected[i]:R}");
        });
    }

    [Fact]
    public void VectorExpIsWithinFewUlpsAndSaturates()
    {
        var x = new List<float>();
        for (float v = -87.25f; v < 88.25f; v += 0.0137f) x.Add(v);
        x.AddRange([0f, -0f, 1e-30f, -1e-30f]);
        var values = x.ToArray();
        void Check(string width, Func<float[], float[]> exp)
        {
            var y = exp(values);
            for (int i = 0; i < values.Length; i++)
            {
                double expected = Math.Exp(values[i]);
                Assert.True(Math.Abs(y[i] - expected) <= 3e-7 * expected,
                    $"{width}: exp({values[i]:R}) = {y[i]:R}, expected {expected:R}");
            }
            var edges = exp([-88f, -1000f, float.NegativeInfinity, 89f, float.PositiveInfinity, float.NaN]);
            Assert.Equal([0f, 0f, 0f, float.PositiveInfinity, float.PositiveInfinity], edges[..5]);
            Assert.True(float.IsNaN(edges[5]), $"{width}: exp(NaN) = {edges[5]}");
        }
        float[] Apply<TV, S>(float[] input) where TV : struct where S : struct, ISimd<TV>
        {
            var padded = new float[(input.Length + S.Count - 1) / S.Count * S.Count];
            input.CopyTo(padded, 0);
            for (int i = 0; i < padded.Length; i += S.Count) S.Store(S.Exp(S.Load(ref padded[0], i)), ref padded[0], i);
            return padded[..input.Length];
        }
        if (IsaSelector.IsSupported(Isa.Vector128)) Check("128", Apply<Vector128<float>, Simd128>);
        if (IsaSelector.IsSupported(Isa.Avx2)) Check("256", Apply<Vector256<float>, Simd256>);
        if (IsaSelector.IsSupported(Isa.Avx512)) Check("512", Apply<Vector512<float>, Simd512>);
    }

    [Fact]
    public void ErfOfNaNIsNaN()
    {
        KernelCheck.ForEachIsa(isa =>
        {
            var x = Enumerable.Repeat(float.NaN, 37).ToArray();
            Activations.Erf(x, x, isa);
            Assert.All(x, v => Assert.True(float.IsNaN(v), $"{isa}"));
        });
    }

    [Fact]
    public void GeluMatchesDoubleReferenceForEveryLengthAndInPlace()
    {
        var random = new Random(11);
        KernelCheck.ForEachIsa(isa =>
        {
            for (int length = 1; length <= 256; length++)
            {
                var x = KernelCheck.Random(random, length, -9, 9);
                var y = new float[length];
                Activations.Gelu(x, y, isa);
                for (int i = 0; i < length; i++)
                {
                    double expected = KernelCheck.Gelu(x[i]);
                    Assert.True(Math.Abs(y[i] - expected) <= 1e-6 * (1 + Math.Abs(x[i])),
                        $"{isa} n={length}: gelu({x[i]:R}) = {y[i]:R}, expected {expected:R}");
                }
                var inPlace = (float[])x.Clone();
                Activations.Gelu(inPlace, inPlace, isa);
                Assert.Equal(y, inPlace);
            }
        });
    }

    [Fact]
    public void GeluBackwardMatchesCentralDifferences()
    {
        var random = new Random(12);
        const double h = 1e-5;
        KernelCheck.ForEachIsa(isa =>
        {
            for (int length = 1; length <= 256; length++)
            {
                var x = KernelCheck.Random(random, length, -7, 7);
                var dy = KernelCheck.Random(random, length, -2, 2);
                var dx = new float[length];
                Activations.GeluBackward(x, dy, dx, isa);
                for (int i = 0; i < length; i++)
                {
                    double slope = (KernelCheck.Gelu(x[i] + h) - KernelCheck.Gelu(x[i] - h)) / (2 * h);
                    double expected = dy[i] * slope;
                    Assert.True(Math.Abs(dx[i] - expected) <= 2e-6 * (1 + Math.Abs(x[i])) * Math.Abs(dy[i]) + 1e-9,
                        $"{isa} n={length}: gelu'({x[i]:R}) * {dy[i]:R} = {dx[i]:R}, expected {expected:R}");
                }
                var inPlace = (float[])dy.Clone();
                Activations.GeluBackward(x, inPlace, inPlace, isa);
                Assert.Equal(dx, inPlace);
            }
        });
    }

    [Fact]
    public void TanhMatchesDoubleForEveryLengthAndInPlace()
    {
        var random = new Random(13);
        KernelCheck.ForEachIsa(isa =>
        {
            for (int length = 1; length <= 256; length++)
            {
                var x = KernelCheck.Random(random, length, -12, 12);
                x[0] = 1e-5f; // small arguments: tanh(x) ~ x must stay accurate relatively
                var y = new float[length];
                Activations.Tanh(x, y, isa);
                for (int i = 0; i < length; i++)
                {
                    double expected = Math.Tanh(x[i]);
                    Assert.True(Math.Abs(y[i] - expected) <= 3e-7 * Math.Abs(expected) + 1e-12,
                        $"{isa}: tanh({x[i]:R}) = {y[i]:R}, expected {expected:R}");
                }
                Activations.Tanh(x, x, isa);
                Assert.Equal(y, x);
            }
        });
    }
}
