namespace EdgeBert.Kernels;

/// <summary>The readable twin of <see cref="Gemm"/>: the definition, three loops, accumulated in double.</summary>
internal static class GemmReference
{
    /// <summary>epilogue((accumulate ? C : 0) + op(A) * op(B) + bias) in double, as a dense [m, n] array.</summary>
    public static double[] Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, bool transA,
        ReadOnlySpan<float> b, int ldb, bool transB, ReadOnlySpan<float> c, int ldc,
        bool accumulate = false, ReadOnlySpan<float> bias = default, GemmEpilogue epilogue = GemmEpilogue.None)
    {
        var result = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = accumulate ? c[i * ldc + j] : 0;
                for (int p = 0; p < k; p++)
                {
                    double aip = transA ? a[p * lda + i] : a[i * lda + p];
                    double bpj = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += aip * bpj;
                }
                if (!bias.IsEmpty) sum += bias[j];
                result[i * n + j] = epilogue == GemmEpilogue.Gelu ? Gelu(sum) : sum;
            }
        return result;
    }

    /// <summary>Same contract and signature as the unpacked <see cref="Gemm"/>.Multiply (without its pool and
    /// path), rounded to float.</summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, bool transA,
        ReadOnlySpan<float> b, int ldb, bool transB, Span<float> c, int ldc,
        bool accumulate = false, ReadOnlySpan<float> bias = default, GemmEpilogue epilogue = GemmEpilogue.None)
    {
        var exact = Multiply(m, n, k, a, lda, transA, b, ldb, transB, (ReadOnlySpan<float>)c, ldc, accumulate, bias,
            epilogue);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[i * ldc + j] = (float)exact[i * n + j];
    }

    /// <summary>Exact GELU, x * Phi(x).</summary>
    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    /// <summary>erf(x) = 2/sqrt(pi) e^(-x^2) sum_n (2x^2)^n x / (1*3*...*(2n+1)): every term is positive,
    /// so the series converges without cancellation; beyond |x| = 6, erf is +-1 in double.</summary>
    public static double Erf(double x)
    {
        if (Math.Abs(x) >= 6) return Math.Sign(x);
        double term = x, sum = x, twoXSquared = 2 * x * x;
        for (int n = 1; Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
        {
            term *= twoXSquared / (2 * n + 1);
            sum += term;
        }
        return 2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x) * sum;
    }
}
