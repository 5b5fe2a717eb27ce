using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>AVX-VNNI micro-kernel: a 6 x 16 tile in 12 ymm accumulators. vpdpbusd is VEX-encoded here, which
/// reaches only ymm0-15: 12 accumulators, 2 B vectors and a broadcast fill them.</summary>
internal static unsafe class Int8KernelAvxVnni
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
            var b0 = Vector256.Load((sbyte*)b);
            var b1 = Vector256.Load((sbyte*)b + 32);
            var x = Vector256.Create(*(int*)a).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, x, b0); c01 = AvxVnni.MultiplyWideningAndAdd(c01, x, b1);
            x = Vector256.Create(*(int*)(a + lda)).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, x, b0); c11 = AvxVnni.MultiplyWideningAndAdd(c11, x, b1);
            x = Vector256.Create(*(int*)(a + 2 * lda)).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, x, b0); c21 = AvxVnni.MultiplyWideningAndAdd(c21, x, b1);
            x = Vector256.Create(*(int*)a3).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, x, b0); c31 = AvxVnni.MultiplyWideningAndAdd(c31, x, b1);
            x = Vector256.Create(*(int*)(a3 + lda)).AsByte();
            c40 = AvxVnni.MultiplyWideningAndAdd(c40, x, b0); c41 = AvxVnni.MultiplyWideningAndAdd(c41, x, b1);
            x = Vector256.Create(*(int*)(a3 + 2 * lda)).AsByte();
            c50 = AvxVnni.MultiplyWideningAndAdd(c50, x, b0); c51 = AvxVnni.MultiplyWideningAndAdd(c51, x, b1);
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
