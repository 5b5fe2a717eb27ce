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
}
