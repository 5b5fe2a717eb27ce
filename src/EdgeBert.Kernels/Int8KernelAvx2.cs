using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>AVX2 micro-kernel for x64 CPUs without VNNI or AVX-512: the int16 route of <see cref="Int8KernelAvx512Bw"/>
/// (vpmaddwd, exact) on a 6 x 16 tile in 12 ymm accumulators, 2 B vectors and a broadcast (16 registers).</summary>
internal static unsafe class Int8KernelAvx2
{
    public const int MR = 6, NR = 16;

    [SkipLocalsInit]
    public static void Compute(int steps, byte* a, nint lda, byte* b, int* acc)
    {
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        byte* a3 = a + 3 * lda;
        for (int p = 0; p < steps; p++)
        {
            var b0 = Vector256.Load((short*)b);
            var b1 = Vector256.Load((short*)b + 16);
            Row(ref c00, ref c01, *(int*)a, b0, b1);
            Row(ref c10, ref c11, *(int*)(a + lda), b0, b1);
            Row(ref c20, ref c21, *(int*)(a + 2 * lda), b0, b1);
            Row(ref c30, ref c31, *(int*)a3, b0, b1);
            Row(ref c40, ref c41, *(int*)(a3 + lda), b0, b1);
            Row(ref c50, ref c51, *(int*)(a3 + 2 * lda), b0, b1);
            a += 4; a3 += 4; b += 4 * NR;
        }
        c00.Store(acc + 0 * NR); c01.Store(acc + 0 * NR + 8);
        c10.Store(acc + 1 * NR); c11.Store(acc + 1 * NR + 8);
        c20.Store(acc + 2 * NR); c21.Store(acc + 2 * NR + 8);
        c30.Store(acc + 3 * NR); c31.Store(acc + 3 * NR + 8);
        c40.Store(acc + 4 * NR); c41.Store(acc + 4 * NR + 8);
        c50.Store(acc + 5 * NR); c51.Store(acc + 5 * NR + 8);
    }

    /// <summary>One row's two int16 values of A (one int32) times the two B vectors, added to its
    /// accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row(ref Vector256<int> c0, ref Vector256<int> c1, int pair, Vector256<short> b0, Vector256<short> b1)
    {
        var x = Vector256.Create(pair).AsInt16();
        c0 += Avx2.MultiplyAddAdjacent(x, b0);
        c1 += Avx2.MultiplyAddAdjacent(x, b1);
    }
}
