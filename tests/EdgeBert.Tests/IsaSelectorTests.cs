using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class IsaSelectorTests
{
    [Fact]
    public void NamesRoundTrip()
    {
        foreach (var isa in Enum.GetValues<Isa>())
        {
            Assert.True(IsaSelector.TryParse(IsaSelector.Name(isa).ToUpperInvariant(), out var back));
            Assert.Equal(isa, back);
        }
        Assert.False(IsaSelector.TryParse("sse9", out _));
    }

    [Fact]
    public void ScalarIsAlwaysSupportedAndBestIsSupported()
    {
        Assert.Contains(Isa.Scalar, IsaSelector.Supported);
        Assert.True(IsaSelector.IsSupported(IsaSelector.Best));
    }

    [Fact]
    public void NoPathMeansTheDefaultAndAPathTheCpuLacksIsRefused()
    {
        Assert.Equal(IsaSelector.Default, IsaSelector.Resolve(null));
        foreach (var isa in IsaSelector.Supported) Assert.Equal(isa, IsaSelector.Resolve(isa));
        // A value outside the enum is a path no CPU has, so the refusal is checked on every machine.
        var lacking = Enum.GetValues<Isa>().Where(i => !IsaSelector.IsSupported(i)).Append((Isa)99);
        foreach (var isa in lacking)
        {
            Assert.Throws<PlatformNotSupportedException>(() => Elementwise.Add([1f], [2f], new float[1], isa));
            Assert.Throws<PlatformNotSupportedException>(() => PackedWeight.FromLinear([1f], 1, 1, isa));
            Assert.Throws<PlatformNotSupportedException>(() =>
                Gemm.Multiply(1, 1, 1, [1f], 1, false, [1f], 1, false, new float[1], 1, isa: isa));
        }
    }

    [Fact]
    public void PackedWeightKeepsThePathItWasPackedFor()
    {
        foreach (var isa in IsaSelector.Supported) Assert.Equal(isa, PackedWeight.FromLinear([1f, 2f], 1, 2, isa).Isa);
        Assert.Equal(IsaSelector.Default, PackedWeight.FromLinear([1f, 2f], 1, 2).Isa);
    }
}
