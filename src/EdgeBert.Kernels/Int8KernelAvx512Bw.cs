using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>AVX-512BW micro-kernel: an 8 x 32 tile in 16 zmm accumulators. Operands are int8 values stored as
/// int16, so vpmaddwd (i16 x i16 -> i32 pairs) is exact for any int8 input; vpmaddubsw would saturate
/// (255 * 127 * 2 > 32767) unless activations were given fewer than 8 bits.</summary>
internal static unsafe class Int8KernelAvx512Bw
{
    public const int MR = 8, NR = 32;

    [SkipLocalsInit]
    public static void Compute(int steps, byte* a, nint lda, byte* b, int* acc)
    {
        Vector512<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<int> c60 = default, c61 = default, c70 = default, c71 = default;
        byte* a4 = a + 4 * lda;
        for (int p = 0; p < steps; p++)
        {
            var b0 = Vector512.Load((short*)b);
            var b1 = Vector512.Load((short*)b + 32);
            Row(ref c00, ref c01, *(int*)a, b0, b1);
            Row(ref c10, ref c11, *(int*)(a + lda), b0, b1);
            Row(ref c20, ref c21, *(int*)(a + 2 * lda), b0, b1);
            Row(ref c30, ref c31, *(int*)(a + 3 * lda), b0, b1);
            Row(ref c40, ref c41, *(int*)a4, b0, b1);
            Row(ref c50, ref c51, *(int*)(a4 + lda), b0, b1);
            Row(ref c60, ref c61, *(int*)(a4 + 2 * lda), b0, b1);
            Row(ref c70, ref c71, *(int*)(a4 + 3 * lda), b0, b1);
            a += 4; a4 += 4; b += 4 * NR;
        }
        c00.Store(acc + 0 * NR); c01.Store(acc + 0 * NR + 16);
        c10.Store(acc + 1 * NR); c11.Store(acc + 1 * NR + 16);
        c20.Store(acc + 2 * NR); c21.Store(acc + 2 * NR + 16);
        c30.Store(acc + 3 * NR); c31.Store(acc + 3 * NR + 16);
        c40.Store(acc + 4 * NR); c41.Store(acc + 4 * NR + 16);
        c50.Store(acc + 5 * NR); c51.Store(acc + 5 * NR + 16);
        c60.Store(acc + 6 * NR); c61.Store(acc + 6 * NR + 16);
        c70.Store(acc + 7 * NR); c71.Store(acc + 7 * NR + 16);
    }

    /// <summary>One row's two int16 values of A (one int32) times the two B vectors, added to its
    /// accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row(ref Vector512<int> c0, ref Vector512<int> c1, int pair, Vector512<short> b0, Vector512<short> b1)
    {
        var x = Vector512.Create(pair).AsInt16();
        c0 += Avx512BW.MultiplyAddAdjacent(x, b0);
        c1 += Avx512BW.MultiplyAddAdjacent(x, b1);
    }
}
