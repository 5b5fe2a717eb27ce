using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>AVX2 + FMA micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators, leaving room for two B vectors and a broadcast.
/// Computes C[0..MR, 0..NR] = (loadC ? C : 0) + Apanel * Bpanel (+ bias) from packed panels:
/// a holds kc groups of MR values (a column of the A block), b holds kc groups of NR values.</summary>
internal static unsafe class GemmKernelAvx2
{
    public const int MR = 6, NR = 16;

    /// <summary>The tile at height H: all MR rows, or the first MR / 2 for a short last panel.</summary>
    [SkipLocalsInit]
    public static void Compute<H>(int kc, float* a, float* b, float* c, int ldc, bool loadC, float* bias, float* nextPanel, int nextSteps)
        where H : struct, ITileHeight
    {
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            if (Sse.IsSupported && p < nextSteps) { Sse.Prefetch1(nextPanel); nextPanel += NR; }
            Vector256<float> b0 = Vector256.Load(b + 0), b1 = Vector256.Load(b + 8);
            var x0 = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x0, b0, c00); c01 = Vector256.FusedMultiplyAdd(x0, b1, c01);
            var x1 = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x1, b0, c10); c11 = Vector256.FusedMultiplyAdd(x1, b1, c11);
            var x2 = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x2, b0, c20); c21 = Vector256.FusedMultiplyAdd(x2, b1, c21);
            if (!H.Half)
            {
                var x3 = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x3, b0, c30); c31 = Vector256.FusedMultiplyAdd(x3, b1, c31);
                var x4 = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x4, b0, c40); c41 = Vector256.FusedMultiplyAdd(x4, b1, c41);
                var x5 = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x5, b0, c50); c51 = Vector256.FusedMultiplyAdd(x5, b1, c51);
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
    static void StoreRow(float* c, Vector256<float> x0, Vector256<float> x1, bool loadC, float* bias)
    {
        if (loadC) { x0 += Vector256.Load(c + 0); x1 += Vector256.Load(c + 8); }
        if (bias != null) { x0 += Vector256.Load(bias + 0); x1 += Vector256.Load(bias + 8); }
        x0.Store(c + 0); x1.Store(c + 8);
    }
}
