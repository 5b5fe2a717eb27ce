using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>The register tile of a vector micro-kernel: how many rows of C it holds (two vectors of columns each).
/// </summary>
internal interface ITileShape
{
    static abstract int Rows { get; }
    /// <summary>Whether the kernel fetches B into L1 a few k steps ahead: worth it when a B panel is too wide
    /// to stay in L1 beside the A panel (48 KB at AVX-512's NR = 32 and k = 384).</summary>
    static abstract bool PrefetchesB { get; }
}

/// <summary>AVX-512 (32 registers): 8 rows, 16 accumulators; eight rows divide the common M (128, 512) without an
/// edge tile.</summary>
internal struct EightRows : ITileShape
{
    public static int Rows => 8;
    public static bool PrefetchesB => true;
}

/// <summary>AVX2 and Vector128 (16 registers): 6 rows, 12 accumulators, leaving room for two B vectors and a
/// broadcast.</summary>
internal struct SixRows : ITileShape
{
    public static int Rows => 6;
    public static bool PrefetchesB => false;
}

/// <summary>The vector micro-kernel of every SIMD path: a T.Rows x (2 vectors) tile of C in registers. S.MulAdd
/// fuses wherever the CPU has FMA (x86 FMA3, NEON) instead of a slow software FMA. Computes
/// C[0..MR, 0..NR] = (loadC ? C : 0) + Apanel * Bpanel (+ bias) from packed panels: a holds kc groups of MR values
/// (a column of the A block), b holds kc groups of NR values. Rows is a constant per instantiation, so the JIT
/// drops the code and accumulators of rows the tile does not have.</summary>
internal static unsafe class GemmKernelSimd<TV, S, T>
    where TV : struct where S : struct, ISimd<TV> where T : struct, ITileShape
{
    public static int MR => T.Rows;
    public static int NR => 2 * S.Count;
    /// <summary>k steps of B ahead of the current one to fetch (fetching past the panel's end is harmless).</summary>
    const int PrefetchSteps = 4;

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
        TV c60 = default, c61 = default;
        TV c70 = default, c71 = default;
        int n = S.Count, nr = 2 * n, mr = T.Rows, rows = H.Half ? mr / 2 : mr;
        for (int p = 0; p < kc; p++)
        {
            if (Sse.IsSupported)
            {
                // One k step of B is nr floats: one 64-byte line, or two at NR = 32.
                if (T.PrefetchesB)
                {
                    Sse.Prefetch0(b + PrefetchSteps * nr);
                    if (nr > 16) Sse.Prefetch0(b + PrefetchSteps * nr + 16);
                }
                if (p < nextSteps)
                {
                    Sse.Prefetch1(nextPanel);
                    if (nr > 16) Sse.Prefetch1(nextPanel + 16);
                    nextPanel += nr;
                }
            }
            TV b0 = S.Load(ref *b, 0), b1 = S.Load(ref *b, n);
            var x0 = S.Splat(a[0]); c00 = S.MulAdd(x0, b0, c00); c01 = S.MulAdd(x0, b1, c01);
            var x1 = S.Splat(a[1]); c10 = S.MulAdd(x1, b0, c10); c11 = S.MulAdd(x1, b1, c11);
            var x2 = S.Splat(a[2]); c20 = S.MulAdd(x2, b0, c20); c21 = S.MulAdd(x2, b1, c21);
            if (rows > 3) { var x3 = S.Splat(a[3]); c30 = S.MulAdd(x3, b0, c30); c31 = S.MulAdd(x3, b1, c31); }
            if (rows > 4) { var x4 = S.Splat(a[4]); c40 = S.MulAdd(x4, b0, c40); c41 = S.MulAdd(x4, b1, c41); }
            if (rows > 5) { var x5 = S.Splat(a[5]); c50 = S.MulAdd(x5, b0, c50); c51 = S.MulAdd(x5, b1, c51); }
            if (rows > 6) { var x6 = S.Splat(a[6]); c60 = S.MulAdd(x6, b0, c60); c61 = S.MulAdd(x6, b1, c61); }
            if (rows > 7) { var x7 = S.Splat(a[7]); c70 = S.MulAdd(x7, b0, c70); c71 = S.MulAdd(x7, b1, c71); }
            a += mr; b += nr;
        }
        StoreRow(c + 0 * ldc, c00, c01, loadC, bias);
        StoreRow(c + 1 * ldc, c10, c11, loadC, bias);
        StoreRow(c + 2 * ldc, c20, c21, loadC, bias);
        if (rows > 3) StoreRow(c + 3 * ldc, c30, c31, loadC, bias);
        if (rows > 4) StoreRow(c + 4 * ldc, c40, c41, loadC, bias);
        if (rows > 5) StoreRow(c + 5 * ldc, c50, c51, loadC, bias);
        if (rows > 6) StoreRow(c + 6 * ldc, c60, c61, loadC, bias);
        if (rows > 7) StoreRow(c + 7 * ldc, c70, c71, loadC, bias);
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
