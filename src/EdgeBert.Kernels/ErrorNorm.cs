namespace EdgeBert.Kernels;

/// <summary>How far a result is from a reference, as one number: the self-test, the peers check and the
/// tests all judge kernels and models by it.</summary>
public static class ErrorNorm
{
    /// <summary>||actual - expected|| / ||expected|| in double (the plain norm when expected is zero).</summary>
    public static double Relative(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"lengths differ: {actual.Length} and {expected.Length}");
        return Relative(actual, expected.Length, expected, 1, expected.Length);
    }

    /// <summary>||a - b|| / ||b||, in double.</summary>
    public static double Relative(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"lengths differ: {actual.Length} and {expected.Length}");
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
    }

    /// <summary>The same over a rows x cols matrix stored with leading dimension ld (a GEMM's C), against a
    /// dense reference.</summary>
    public static double Relative(ReadOnlySpan<float> actual, int ld, ReadOnlySpan<double> expected, int rows, int cols)
    {
        if (expected.Length != rows * cols)
            throw new ArgumentException($"the reference has {expected.Length} values, not {rows} x {cols}");
        double diff = 0, norm = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double r = expected[i * cols + j], d = actual[i * ld + j] - r;
                diff += d * d;
                norm += r * r;
            }
        return norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
    }
}
