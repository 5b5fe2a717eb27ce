using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>AVX-512 micro-kernel: an 8 x 32 tile of C in 16 zmm accumulators (two B vectors per k, eight broadcasts of A).
/// Eight rows divide the common M (128, 512) without an edge tile.
/// Computes C[0..MR, 0..NR] = (loadC ? C : 0) + Apanel * Bpanel (+ bias) from packed panels:
/// a holds kc groups of MR values (a column of the A block), b holds kc groups of NR values.</summary>
internal static unsafe class GemmKernelAvx512
{
    public const int MR = 8, NR = 32;
    /// <summary>Floats of B ahead of the current k step to prefetch: four k steps (prefetching past the panel's end is harmless).</summary>
    const int PrefetchAhead = 4 * NR;

    /// <summary>The tile at height H: all MR rows, or the first MR / 2 for a short last panel.</summary>
    [SkipLocalsInit]
    public static void Compute<H>(int kc, float* a, float* b, float* c, int ldc, bool loadC, float* bias, float* nextPanel, int nextSteps)
        where H : struct, ITileHeight
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            if (Sse.IsSupported)
            {
                // The 48 KB B panel does not fit L1 beside the A panel, so fetch its lines a few k steps ahead
                // (512 bytes; alternating in one process: +2-8% median GFLOP/s at m = 1024, +2-5% at m = 128).
                Sse.Prefetch0(b + PrefetchAhead);
                Sse.Prefetch0(b + PrefetchAhead + 16);
                if (p < nextSteps) { Sse.Prefetch1(nextPanel); Sse.Prefetch1(nextPanel + 16); nextPanel += NR; }
            }
            Vector512<float> b0 = Vector512.Load(b + 0), b1 = Vector512.Load(b + 16);
            var x0 = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x0, b0, c00); c01 = Vector512.FusedMultiplyAdd(x0, b1, c01);
            var x1 = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x1, b0, c10); c11 = Vector512.FusedMultiplyAdd(x1, b1, c11);
            var x2 = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x2, b0, c20); c21 = Vector512.FusedMultiplyAdd(x2, b1, c21);
            var x3 = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x3, b0, c30); c31 = Vector512.FusedMultiplyAdd(x3, b1, c31);
            if (!H.Half)
            {
                var x4 = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x4, b0, c40); c41 = Vector512.FusedMultiplyAdd(x4, b1, c41);
                var x5 = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x5, b0, c50); c51 = Vector512.FusedMultiplyAdd(x5, b1, c51);
                var x6 = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x6, b0, c60); c61 = Vector512.FusedMultiplyAdd(x6, b1, c61);
                var x7 = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x7, b0, c70); c71 = Vector512.FusedMultiplyAdd(x7, b1, c71);
            }
            a += MR; b += NR;
        }
        StoreRow(c + 0 * ldc, c00, c01, loadC, bias);
        StoreRow(c + 1 * ldc, c10, c11, loadC, bias);
        StoreRow(c + 2 * ldc, c20, c21, loadC, bias);
        StoreRow(c + 3 * ldc, c30, c31, loadC, bias);
        if (!H.Half)
        {
            StoreRow(c + 4 * ldc, c40, c41, loadC, bias);
            StoreRow(c + 5 * ldc, c50, c51, loadC, bias);
            StoreRow(c + 6 * ldc, c60, c61, loadC, bias);
            StoreRow(c + 7 * ldc, c70, c71, loadC, bias);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRow(float* c, Vector512<float> x0, Vector512<float> x1, bool loadC, float* bias)
    {
        if (loadC) { x0 += Vector512.Load(c + 0); x1 += Vector512.Load(c + 16); }
        if (bias != null) { x0 += Vector512.Load(bias + 0); x1 += Vector512.Load(bias + 16); }
        x0.Store(c + 0); x1.Store(c + 16);
    }
}
