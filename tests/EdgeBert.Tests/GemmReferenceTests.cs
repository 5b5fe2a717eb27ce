using EdgeBert.Kernels;

namespace EdgeBert.Tests;

/// <summary>The reference is what everything else is checked against, so it is checked by hand-worked values.</summary>
public class GemmReferenceTests
{
    [Fact]
    public void TwoByTwoWorkedByHandForEveryTransposeCombination()
    {
        // op(A) = [[1,2],[3,4]], op(B) = [[5,6],[7,8]]  ->  [[19,22],[43,50]]
        float[] a = [1, 2, 3, 4], aT = [1, 3, 2, 4], b = [5, 6, 7, 8], bT = [5, 7, 6, 8];
        double[] expected = [19, 22, 43, 50];
        Assert.Equal(expected, GemmReference.Multiply(2, 2, 2, a, 2, false, b, 2, false, [], 2));
        Assert.Equal(expected, GemmReference.Multiply(2, 2, 2, aT, 2, true, b, 2, false, [], 2));
        Assert.Equal(expected, GemmReference.Multiply(2, 2, 2, a, 2, false, bT, 2, true, [], 2));
        Assert.Equal(expected, GemmReference.Multiply(2, 2, 2, aT, 2, true, bT, 2, true, [], 2));
        double[] withBiasAndC = [19 + 1 + 10, 22 + 2 + 20, 43 + 3 + 10, 50 + 4 + 20];
        Assert.Equal(withBiasAndC, GemmReference.Multiply(2, 2, 2, a, 2, false, b, 2, false, [1, 2, 3, 4], 2, true,
            [10, 20]));
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(-2.0, -0.9953222650189527)]
    [InlineData(3.5, 0.9999992569016276)]
    public void ErfMatchesTabulatedValues(double x, double erf)
    {
        Assert.Equal(erf, GemmReference.Erf(x), 1e-14);
    }
}
