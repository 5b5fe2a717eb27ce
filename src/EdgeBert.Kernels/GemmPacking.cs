using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>Copies blocks of op(A) and op(B) into the panel layouts the micro-kernels stream through.
/// A block of mc x kc becomes ceil(mc/MR) panels of kc groups of MR values (rows past mc are zero);
/// a block of kc x nc becomes ceil(nc/NR) panels of kc groups of NR values (columns past nc are zero).</summary>
internal static unsafe class GemmPacking
{
    /// <summary>Packs op(A)[ic..ic+mc, pc..pc+kc]; op(A) is A [m,k] with lda, or A^T of A stored [k,m].</summary>
    public static void PackA(float* a, int lda, bool transA, int ic, int mc, int pc, int kc, int mr, float* dst)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = dst + (long)(ir / mr) * kc * mr;
            if (transA)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(pc + p) * lda + ic + ir;
                    float* to = panel + p * mr;
                    for (int r = 0; r < rows; r++) to[r] = src[r];
                    for (int r = rows; r < mr; r++) to[r] = 0;
                }
            }
            else if (mr == 8 && rows == 8 && Avx.IsSupported)
            {
                TransposeEightRows(a + (long)(ic + ir) * lda + pc, lda, kc, panel);
            }
            else
            {
                for (int r = 0; r < rows; r++)
                {
                    float* src = a + (long)(ic + ir + r) * lda + pc;
                    for (int p = 0; p < kc; p++) panel[p * mr + r] = src[p];
                }
                for (int r = rows; r < mr; r++)
                    for (int p = 0; p < kc; p++) panel[p * mr + r] = 0;
            }
        }
    }

    /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc]; op(B) is B [k,n] with ldb, or B^T of B stored [n,k].</summary>
    public static void PackB(float* b, int ldb, bool transB, int jc, int nc, int pc, int kc, int nr, float* dst)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* panel = dst + (long)(jr / nr) * kc * nr;
            if (transB)
            {
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (long)(jc + jr + j) * ldb + pc;
                    for (int p = 0; p < kc; p++) panel[p * nr + j] = src[p];
                }
                for (int j = cols; j < nr; j++)
                    for (int p = 0; p < kc; p++) panel[p * nr + j] = 0;
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(pc + p) * ldb + jc + jr;
                    float* to = panel + p * nr;
                    for (int j = 0; j < cols; j++) to[j] = src[j];
                    for (int j = cols; j < nr; j++) to[j] = 0;
                }
            }
        }
    }

    /// <summary>Eight rows of A into an MR = 8 panel, 8 x 8 blocks at a time transposed in registers:
    /// scalar strided copying cost about 8% of a 128 x 768 x 768 product, this well under 1%.</summary>
    static void TransposeEightRows(float* src, int lda, int kc, float* panel)
    {
        int p = 0;
        for (; p + 8 <= kc; p += 8)
        {
            float* s = src + p;
            Vector256<float> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + lda),
                r2 = Avx.LoadVector256(s + 2 * lda), r3 = Avx.LoadVector256(s + 3 * lda),
                r4 = Avx.LoadVector256(s + 4 * lda), r5 = Avx.LoadVector256(s + 5 * lda),
                r6 = Avx.LoadVector256(s + 6 * lda), r7 = Avx.LoadVector256(s + 7 * lda);
            // Interleave pairs of rows, then pairs of pairs: each 128-bit lane then holds 4 rows at one k.
            Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1),
                t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3),
                t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5),
                t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
            Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE),
                u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE),
                u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE),
                u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
            // Rows 0-3 and 4-7 of the same k sit in matching lanes of u(i) and u(i+4).
            float* d = panel + p * 8;
            Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
            Avx.Store(d + 8, Avx.Permute2x128(u1, u5, 0x20));
            Avx.Store(d + 16, Avx.Permute2x128(u2, u6, 0x20));
            Avx.Store(d + 24, Avx.Permute2x128(u3, u7, 0x20));
            Avx.Store(d + 32, Avx.Permute2x128(u0, u4, 0x31));
            Avx.Store(d + 40, Avx.Permute2x128(u1, u5, 0x31));
            Avx.Store(d + 48, Avx.Permute2x128(u2, u6, 0x31));
            Avx.Store(d + 56, Avx.Permute2x128(u3, u7, 0x31));
        }
        for (; p < kc; p++)
            for (int r = 0; r < 8; r++) panel[p * 8 + r] = src[(long)r * lda + p];
    }
}
