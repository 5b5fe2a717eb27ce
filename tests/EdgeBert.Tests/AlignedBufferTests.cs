using EdgeBert.Kernels;
using Xunit;

namespace EdgeBert.Tests;

public class AlignedBufferTests
{
    [Fact]
    public unsafe void Every_growth_starts_on_a_cache_line_and_keeps_the_asked_length()
    {
        var buffer = new AlignedBuffer();
        Assert.Equal(0, buffer.Length);
        var keepHeapBusy = new List<float[]>();
        foreach (int length in new[] { 1, 17, 100, 1000, 4099, 65536 })
        {
            keepHeapBusy.Add(new float[length % 7 + 1]); // shifts where the next pinned array lands
            buffer.EnsureCapacity(length);
            Assert.Equal(length, buffer.Length);
            Assert.Equal(length, buffer.AsSpan().Length);
            fixed (float* start = buffer.AsSpan())
                Assert.Equal(0, (long)((nuint)start % 64));
        }
        buffer.EnsureCapacity(10);
        Assert.Equal(65536, buffer.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(65530, 7));
    }
}
