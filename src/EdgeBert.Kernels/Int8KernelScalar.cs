namespace EdgeBert.Kernels;

/// <summary>Portable micro-kernel in plain loops, on the s8 x s8 layout of the ARM path, for CPUs with no dot-product
/// instructions.</summary>
internal static unsafe class Int8KernelScalar
{
    public const int MR = 4, NR = 16;

    public static void Compute(int steps, byte* a, nint lda, byte* b, int* acc)
    {
        for (int i = 0; i < MR * NR; i++) acc[i] = 0;
        for (int p = 0; p < steps; p++)
        {
            sbyte* bGroup = (sbyte*)b + (long)p * 4 * NR;
            for (int r = 0; r < MR; r++)
            {
                sbyte* x = (sbyte*)(a + r * lda) + 4 * p;
                for (int j = 0; j < NR; j++)
                {
                    sbyte* w = bGroup + 4 * j;
                    acc[r * NR + j] += x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
                }
            }
        }
    }
}
