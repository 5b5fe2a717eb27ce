namespace EdgeBert.Kernels;

/// <summary>Scalar twin of <see cref="LayerNorm"/>, one row at a time.</summary>
internal static class LayerNormReference
{
    /// <summary>Normalises one row; returns (mean, rstd). The mean is summed in double so a
    /// constant row gives its value exactly; the second pass also sums the deviations to
    /// correct the float rounding of the mean (rows with a large mean and a small spread).</summary>
    internal static (float Mean, float Rstd) Row(ReadOnlySpan<float> x, Span<float> y,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps)
    {
        int n = x.Length;
        double total = 0;
        for (int j = 0; j < n; j++) total += x[j];
        float mean = (float)(total / n);
        // Double sums: one scalar chain of 768 float additions would lose ~1e-6 relative,
        // where the vector paths' 8 to 16 lanes stay well below.
        double deviationSum = 0, squareSum = 0;
        for (int j = 0; j < n; j++)
        {
            float d = x[j] - mean;
            deviationSum += d;
            squareSum += d * d;
        }
        float shift = (float)(deviationSum / n);
        float variance = MathF.Max((float)(squareSum / n) - shift * shift, 0f);
        float rstd = 1f / MathF.Sqrt(variance + eps);
        for (int j = 0; j < n; j++)
            y[j] = (x[j] - mean - shift) * rstd * gamma[j] + beta[j];
        return (mean + shift, rstd);
    }

    /// <summary>dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma;
    /// dgamma += dy xhat; dbeta += dy.</summary>
    internal static void BackwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gamma,
        float mean, float rstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta)
    {
        int n = x.Length;
        float gSum = 0, gxSum = 0;
        for (int j = 0; j < n; j++)
        {
            float xhat = (x[j] - mean) * rstd;
            float g = dy[j] * gamma[j];
            gSum += g;
            gxSum += g * xhat;
            dgamma[j] += dy[j] * xhat;
            dbeta[j] += dy[j];
        }
        float gMean = gSum / n, gxMean = gxSum / n;
        for (int j = 0; j < n; j++)
        {
            float xhat = (x[j] - mean) * rstd;
            dx[j] = rstd * (dy[j] * gamma[j] - gMean - xhat * gxMean);
        }
    }
}
