using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>Micro-kernel of the 16-register paths: a 6 x (2 vectors) tile of C in 12 accumulators, leaving room
/// for two B vectors and a broadcast. AVX2 (6 x 16) and Vector128 (6 x 8, SSE or NEON) are this one source;
/// S.MulAdd fuses wherever the CPU has FMA. Computes C[0..MR, 0..NR] = (loadC ? C : 0) + Apanel * Bpanel (+ bias)
/// from packed panels: a holds kc groups of MR values (a column of the A block), b holds kc groups of NR values.
/// </summary>
internal static unsafe class GemmKernelSixRows<TV, S> where TV : struct where S : struct, ISimd<TV>
{
    public const int MR = 6;
    public static int NR => 2 * S.Count;

    /// <summary>The tile at height H: all MR rows, or the first MR / 2 for a short last panel.</summary>
    [SkipLocalsInit]
    public static void Compute<H>(int kc, float* a, float* b, float* c, int ldc, bool loadC, float* bias,
        float* nextPanel, int nextSteps) where H : struct, ITileHeight
    {
        TV c00 = default, c01 = default;
        TV c10 = default, c11 = default;
        TV c20 = default, c21 = default;
        TV c30 = default, c31 = default;
        TV c40 = default, c41 = default;
        TV c50 = default, c51 = default;
        int n = S.Count;
        for (int p = 0; p < kc; p++)
        {
            if (Sse.IsSupported && p < nextSteps) { Sse.Prefetch1(nextPanel); nextPanel += 2 * n; }
            TV b0 = S.Load(ref *b, 0), b1 = S.Load(ref *b, n);
            var x0 = S.Splat(a[0]); c00 = S.MulAdd(x0, b0, c00); c01 = S.MulAdd(x0, b1, c01);
            var x1 = S.Splat(a[1]); c10 = S.MulAdd(x1, b0, c10); c11 = S.MulAdd(x1, b1, c11);
            var x2 = S.Splat(a[2]); c20 = S.MulAdd(x2, b0, c20); c21 = S.MulAdd(x2, b1, c21);
            if (!H.Half)
            {
                var x3 = S.Splat(a[3]); c30 = S.MulAdd(x3, b0, c30); c31 = S.MulAdd(x3, b1, c31);
                var x4 = S.Splat(a[4]); c40 = S.MulAdd(x4, b0, c40); c41 = S.MulAdd(x4, b1, c41);
                var x5 = S.Splat(a[5]); c50 = S.MulAdd(x5, b0, c50); c51 = S.MulAdd(x5, b1, c51);
            }
            a += MR; b += 2 * n;
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
    static void StoreRow(float* c, TV x0, TV x1, bool loadC, float* bias)
    {
        int n = S.Count;
        if (loadC) { x0 = S.Add(x0, S.Load(ref *c, 0)); x1 = S.Add(x1, S.Load(ref *c, n)); }
        if (bias != null) { x0 = S.Add(x0, S.Load(ref *bias, 0)); x1 = S.Add(x1, S.Load(ref *bias, n)); }
        S.Store(x0, ref *c, 0); S.Store(x1, ref *c, n);
    }
}
