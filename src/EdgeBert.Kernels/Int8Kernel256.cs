using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>How a 256-bit INT8 micro-kernel adds one k group of a broadcast A value times a B vector to its
/// accumulator; each k group is 4 bytes of A and 32 bytes of B in either layout.</summary>
internal interface IInt8Dot256
{
    static abstract Vector256<int> Add(Vector256<int> acc, Vector256<int> a, Vector256<byte> b);
}

/// <summary>AVX-VNNI vpdpbusd: four u8 x s8 products per lane (activations shifted by 128).</summary>
internal readonly struct VnniDot : IInt8Dot256
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<int> a, Vector256<byte> b) =>
        AvxVnni.MultiplyWideningAndAdd(acc, a.AsByte(), b.AsSByte());
}

/// <summary>AVX2 vpmaddwd on int16 values: two exact products per lane, for CPUs without VNNI.</summary>
internal readonly struct Int16Dot : IInt8Dot256
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<int> a, Vector256<byte> b) =>
        acc + Avx2.MultiplyAddAdjacent(a.AsInt16(), b.AsInt16());
}

/// <summary>The 256-bit INT8 micro-kernel: a 6 x 16 tile in 12 ymm accumulators. VEX-encoded code reaches only
/// ymm0-15: 12 accumulators, 2 B vectors and a broadcast fill them.</summary>
internal static unsafe class Int8Kernel256<TDot> where TDot : struct, IInt8Dot256
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
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 32);
            var x = Vector256.Create(*(int*)a);
            c00 = TDot.Add(c00, x, b0); c01 = TDot.Add(c01, x, b1);
            x = Vector256.Create(*(int*)(a + lda));
            c10 = TDot.Add(c10, x, b0); c11 = TDot.Add(c11, x, b1);
            x = Vector256.Create(*(int*)(a + 2 * lda));
            c20 = TDot.Add(c20, x, b0); c21 = TDot.Add(c21, x, b1);
            x = Vector256.Create(*(int*)a3);
            c30 = TDot.Add(c30, x, b0); c31 = TDot.Add(c31, x, b1);
            x = Vector256.Create(*(int*)(a3 + lda));
            c40 = TDot.Add(c40, x, b0); c41 = TDot.Add(c41, x, b1);
            x = Vector256.Create(*(int*)(a3 + 2 * lda));
            c50 = TDot.Add(c50, x, b0); c51 = TDot.Add(c51, x, b1);
            a += 4; a3 += 4; b += 4 * NR;
        }
        c00.Store(acc + 0 * NR); c01.Store(acc + 0 * NR + 8);
        c10.Store(acc + 1 * NR); c11.Store(acc + 1 * NR + 8);
        c20.Store(acc + 2 * NR); c21.Store(acc + 2 * NR + 8);
        c30.Store(acc + 3 * NR); c31.Store(acc + 3 * NR + 8);
        c40.Store(acc + 4 * NR); c41.Store(acc + 4 * NR + 8);
        c50.Store(acc + 5 * NR); c51.Store(acc + 5 * NR + 8);
    }
}
