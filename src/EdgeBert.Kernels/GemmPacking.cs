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
            else if (mr == 8 && Avx.IsSupported)
            {
                TransposeRows(a + (long)(ic + ir) * lda + pc, lda, rows, kc, panel);
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

    /// <summary>Up to eight rows of A into an MR = 8 panel (rows past the last zero), 8 x 8 blocks at a time
    /// transposed in registers, which costs a fraction of scalar strided copying (docs/kernels.md). The last panel
    /// is a partial one whenever a gated layer keeps a token count not divisible by 8.</summary>
    static void TransposeRows(float* src, int lda, int rows, int kc, float* panel)
    {
        int p = 0;
        if (rows == 8)
            for (; p + 8 <= kc; p += 8) Transpose8.Block(src + p, lda, panel + p * 8, 8, Vector256<float>.One);
        else
            for (; p + 8 <= kc; p += 8) Transpose8.Block(src + p, lda, rows, panel + p * 8, 8, Vector256<float>.One);
        for (; p < kc; p++)
            for (int r = 0; r < 8; r++) panel[p * 8 + r] = r < rows ? src[(long)r * lda + p] : 0;
    }
}
