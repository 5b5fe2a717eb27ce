using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace EdgeBert.Kernels;

/// <summary>ARM64 dot-product micro-kernel: a 4 x 16 tile in 16 q-register accumulators; sdot multiplies s8 by s8,
/// so activations need no shift.</summary>
internal static unsafe class Int8KernelArmDot
{
    public const int MR = 4, NR = 16;

    [SkipLocalsInit]
    public static void Compute(int steps, byte* a, nint lda, byte* b, int* acc)
    {
        Vector128<int> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector128<int> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector128<int> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector128<int> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int p = 0; p < steps; p++)
        {
            var b0 = Vector128.Load((sbyte*)b);
            var b1 = Vector128.Load((sbyte*)b + 16);
            var b2 = Vector128.Load((sbyte*)b + 32);
            var b3 = Vector128.Load((sbyte*)b + 48);
            var x = Vector128.Create(*(int*)a).AsSByte();
            c00 = Dp.DotProduct(c00, x, b0); c01 = Dp.DotProduct(c01, x, b1);
            c02 = Dp.DotProduct(c02, x, b2); c03 = Dp.DotProduct(c03, x, b3);
            x = Vector128.Create(*(int*)(a + lda)).AsSByte();
            c10 = Dp.DotProduct(c10, x, b0); c11 = Dp.DotProduct(c11, x, b1);
            c12 = Dp.DotProduct(c12, x, b2); c13 = Dp.DotProduct(c13, x, b3);
            x = Vector128.Create(*(int*)(a + 2 * lda)).AsSByte();
            c20 = Dp.DotProduct(c20, x, b0); c21 = Dp.DotProduct(c21, x, b1);
            c22 = Dp.DotProduct(c22, x, b2); c23 = Dp.DotProduct(c23, x, b3);
            x = Vector128.Create(*(int*)(a + 3 * lda)).AsSByte();
            c30 = Dp.DotProduct(c30, x, b0); c31 = Dp.DotProduct(c31, x, b1);
            c32 = Dp.DotProduct(c32, x, b2); c33 = Dp.DotProduct(c33, x, b3);
            a += 4; b += 4 * NR;
        }
        Store(acc + 0 * NR, c00, c01, c02, c03);
        Store(acc + 1 * NR, c10, c11, c12, c13);
        Store(acc + 2 * NR, c20, c21, c22, c23);
        Store(acc + 3 * NR, c30, c31, c32, c33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(int* row, Vector128<int> x0, Vector128<int> x1, Vector128<int> x2, Vector128<int> x3)
    {
        x0.Store(row); x1.Store(row + 4); x2.Store(row + 8); x3.Store(row + 12);
    }
}
