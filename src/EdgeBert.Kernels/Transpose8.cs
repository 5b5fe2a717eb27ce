using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>8 x 8 blocks of floats transposed in AVX registers, for the copies whose scalar form is a
/// strided gather: packing rows of A into GEMM panels, and K^T / V^T of an attention head.</summary>
internal static unsafe class Transpose8
{
    /// <summary>dst[c * ldDst + r] = scale * src[r * ldSrc + c] for r, c in 0..7 (scale 1 copies exactly).
    /// Needs <see cref="Avx.IsSupported"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block(float* src, nint ldSrc, float* dst, nint ldDst, Vector256<float> scale) =>
        Block(src, ldSrc, 8, dst, ldDst, scale);

    /// <summary>As above for the first <paramref name="rows"/> (1..8) rows of src; the other rows read as zeros,
    /// as a GEMM panel wants its padding rows. A constant 8 folds the row checks away.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block(float* src, nint ldSrc, int rows, float* dst, nint ldDst, Vector256<float> scale)
    {
        Vector256<float> r0 = Avx.LoadVector256(src),
            r1 = rows > 1 ? Avx.LoadVector256(src + ldSrc) : default,
            r2 = rows > 2 ? Avx.LoadVector256(src + 2 * ldSrc) : default,
            r3 = rows > 3 ? Avx.LoadVector256(src + 3 * ldSrc) : default,
            r4 = rows > 4 ? Avx.LoadVector256(src + 4 * ldSrc) : default,
            r5 = rows > 5 ? Avx.LoadVector256(src + 5 * ldSrc) : default,
            r6 = rows > 6 ? Avx.LoadVector256(src + 6 * ldSrc) : default,
            r7 = rows > 7 ? Avx.LoadVector256(src + 7 * ldSrc) : default;
        // Interleave pairs of rows, then pairs of pairs: each 128-bit lane then holds 4 rows at one column.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1),
            t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3),
            t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5),
            t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE),
            u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE),
            u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE),
            u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        // Rows 0-3 and 4-7 of the same column sit in matching lanes of u(i) and u(i+4).
        Avx.Store(dst, scale * Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldDst, scale * Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldDst, scale * Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldDst, scale * Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldDst, scale * Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldDst, scale * Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldDst, scale * Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldDst, scale * Avx.Permute2x128(u3, u7, 0x31));
    }
}
