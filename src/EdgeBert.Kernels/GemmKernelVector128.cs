using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>Vector128 micro-kernel (SSE or NEON): a 6 x 8 tile of C in 12 accumulators. MultiplyAddEstimate fuses where
/// the CPU has FMA (NEON, x86 FMA3) and falls back to multiply + add elsewhere, instead of a slow software FMA.
/// Computes C[0..MR, 0..NR] = (loadC ? C : 0) + Apanel * Bpanel (+ bias) from packed panels:
/// a holds kc groups of MR values (a column of the A block), b holds kc groups of NR values.</summary>
internal static unsafe class GemmKernelVector128
{
    public const int MR = 6, NR = 8;

    /// <summary>The tile at height H: all MR rows, or the first MR / 2 for a short last panel.</summary>
    [SkipLocalsInit]
    public static void Compute<H>(int kc, float* a, float* b, float* c, int ldc, bool loadC, float* bias, float* nextPanel, int nextSteps)
        where H : struct, ITileHeight
    {
        Vector128<float> c00 = default, c01 = default;
        Vector128<float> c10 = default, c11 = default;
        Vector128<float> c20 = default, c21 = default;
        Vector128<float> c30 = default, c31 = default;
        Vector128<float> c40 = default, c41 = default;
        Vector128<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector128<float> b0 = Vector128.Load(b + 0), b1 = Vector128.Load(b + 4);
            var x0 = Vector128.Create(a[0]); c00 = Vector128.MultiplyAddEstimate(x0, b0, c00); c01 = Vector128.MultiplyAddEstimate(x0, b1, c01);
            var x1 = Vector128.Create(a[1]); c10 = Vector128.MultiplyAddEstimate(x1, b0, c10); c11 = Vector128.MultiplyAddEstimate(x1, b1, c11);
            var x2 = Vector128.Create(a[2]); c20 = Vector128.MultiplyAddEstimate(x2, b0, c20); c21 = Vector128.MultiplyAddEstimate(x2, b1, c21);
            if (!H.Half)
            {
                var x3 = Vector128.Create(a[3]); c30 = Vector128.MultiplyAddEstimate(x3, b0, c30); c31 = Vector128.MultiplyAddEstimate(x3, b1, c31);
                var x4 = Vector128.Create(a[4]); c40 = Vector128.MultiplyAddEstimate(x4, b0, c40); c41 = Vector128.MultiplyAddEstimate(x4, b1, c41);
                var x5 = Vector128.Create(a[5]); c50 = Vector128.MultiplyAddEstimate(x5, b0, c50); c51 = Vector128.MultiplyAddEstimate(x5, b1, c51);
            }
            a += MR; b += NR;
        }
        StoreRow(c + 0 * ldc, c00, c01, loadC, bias);
        StoreRow(c + 1 * ldc, c10, c11, loadC, bias);
        StoreRow(c + 2 * ldc, c20, c21, loadC, bias);
        if (!H.Half)
        {
            StoreRow(c + 3 * ldc, c30, c31, loadC, bias);
            StoreRow(c + 4 * ldc, c40, c41, loadC, bias);
            StoreRow(c + 5 * ldc, c50, c51, loadC, bias);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRow(float* c, Vector128<float> x0, Vector128<float> x1, bool loadC, float* bias)
    {
        if (loadC) { x0 += Vector128.Load(c + 0); x1 += Vector128.Load(c + 4); }
        if (bias != null) { x0 += Vector128.Load(bias + 0); x1 += Vector128.Load(bias + 4); }
        x0.Store(c + 0); x1.Store(c + 4);
    }
}
