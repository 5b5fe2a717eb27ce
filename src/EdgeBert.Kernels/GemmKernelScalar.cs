using System.Runtime.CompilerServices;

namespace EdgeBert.Kernels;

/// <summary>Scalar micro-kernel for CPUs without SIMD: a 4 x 4 tile, same contract as the vector kernels.</summary>
internal static unsafe class GemmKernelScalar
{
    public const int MR = 4, NR = 4;

    [SkipLocalsInit]
    public static void Compute(int kc, float* a, float* b, float* c, int ldc, bool loadC, float* bias,
        float* nextPanel, int nextSteps)
    {
        float* acc = stackalloc float[MR * NR];
        new Span<float>(acc, MR * NR).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < MR; i++)
            {
                float ai = a[i];
                for (int j = 0; j < NR; j++) acc[i * NR + j] += ai * b[j];
            }
            a += MR; b += NR;
        }
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
            {
                float v = acc[i * NR + j];
                if (loadC) v += c[i * ldc + j];
                if (bias != null) v += bias[j];
                c[i * ldc + j] = v;
            }
    }
}
