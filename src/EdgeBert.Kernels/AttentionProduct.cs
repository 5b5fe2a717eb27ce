using System.Runtime.CompilerServices;

namespace EdgeBert.Kernels;

/// <summary>The small products of one attention head (n x n x headDim), C = op(A) B, without packing:
/// at these sizes the operands sit in L1/L2 and copying them into panels (as <see cref="Gemm"/> does)
/// costs about as much as it saves. op(A) is A [m,k] with row stride lda, or (transA) A^T of A stored
/// [k,m]; B is [k,cols] row-major with stride ldb. Tiles are 2 vectors wide and 8 rows tall with the 32
/// registers of AVX-512 (16 accumulators, the GEMM's 8 x 32 tile: each B vector loaded serves 8 FMAs),
/// 4 rows tall otherwise (8 accumulators, enough independent FMAs to hide their latency within the
/// 16 registers of AVX2).</summary>
internal static unsafe class AttentionProduct
{

    /// <summary>Overwrites C[m, cols] (row stride ldc).</summary>
    public static void Multiply<TV, S>(int m, int cols, int k, float* a, int lda, bool transA, float* b, int ldb,
        float* c, int ldc)
        where TV : struct where S : struct, ISimd<TV>
    {
        // Step between consecutive rows of op(A), and between consecutive depths within a row.
        nint rowStep = transA ? 1 : lda, depthStep = transA ? lda : 1;
        int width = 2 * S.Count, j = 0;
        // Columns outermost: a B block of k x width stays in L1 while every row of A streams past it.
        for (; j + width <= cols; j += width)
        {
            int i = 0;
            if (S.Count == 16)
                for (; i + 8 <= m; i += 8)
                    Tile8x2<TV, S>(k, a + i * rowStep, rowStep, depthStep, b + j, ldb, c + (nint)i * ldc + j, ldc);
            for (; i + 4 <= m; i += 4)
                Tile4x2<TV, S>(k, a + i * rowStep, rowStep, depthStep, b + j, ldb, c + (nint)i * ldc + j, ldc);
            for (; i < m; i++)
                Tile1x2<TV, S>(k, a + i * rowStep, depthStep, b + j, ldb, c + (nint)i * ldc + j);
        }
        for (; j + S.Count <= cols; j += S.Count)
            for (int i = 0; i < m; i++)
                Tile1x1<TV, S>(k, a + i * rowStep, depthStep, b + j, ldb, c + (nint)i * ldc + j);
        for (; j < cols; j++)
            for (int i = 0; i < m; i++)
            {
                float* ai = a + i * rowStep;
                float sum = 0;
                for (int p = 0; p < k; p++) sum += ai[p * depthStep] * b[(nint)p * ldb + j];
                c[(nint)i * ldc + j] = sum;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile8x2<TV, S>(int k, float* a, nint rowStep, nint depthStep, float* b, int ldb, float* c, int ldc)
        where TV : struct where S : struct, ISimd<TV>
    {
        TV c00 = default, c01 = default, c10 = default, c11 = default;
        TV c20 = default, c21 = default, c30 = default, c31 = default;
        TV c40 = default, c41 = default, c50 = default, c51 = default;
        TV c60 = default, c61 = default, c70 = default, c71 = default;
        // Two base pointers four rows apart keep every row within one scaled-index address.
        float* a4 = a + 4 * rowStep;
        nint row2 = 2 * rowStep, row3 = 3 * rowStep;
        int n = S.Count;
        for (int p = 0; p < k; p++)
        {
            TV b0 = S.Load(ref *b, 0), b1 = S.Load(ref *b, n);
            TV x = S.Splat(a[0]); c00 = S.MulAdd(x, b0, c00); c01 = S.MulAdd(x, b1, c01);
            x = S.Splat(a[rowStep]); c10 = S.MulAdd(x, b0, c10); c11 = S.MulAdd(x, b1, c11);
            x = S.Splat(a[row2]); c20 = S.MulAdd(x, b0, c20); c21 = S.MulAdd(x, b1, c21);
            x = S.Splat(a[row3]); c30 = S.MulAdd(x, b0, c30); c31 = S.MulAdd(x, b1, c31);
            x = S.Splat(a4[0]); c40 = S.MulAdd(x, b0, c40); c41 = S.MulAdd(x, b1, c41);
            x = S.Splat(a4[rowStep]); c50 = S.MulAdd(x, b0, c50); c51 = S.MulAdd(x, b1, c51);
            x = S.Splat(a4[row2]); c60 = S.MulAdd(x, b0, c60); c61 = S.MulAdd(x, b1, c61);
            x = S.Splat(a4[row3]); c70 = S.MulAdd(x, b0, c70); c71 = S.MulAdd(x, b1, c71);
            a += depthStep; a4 += depthStep; b += ldb;
        }
        S.Store(c00, ref *c, 0); S.Store(c01, ref *c, n); c += ldc;
        S.Store(c10, ref *c, 0); S.Store(c11, ref *c, n); c += ldc;
        S.Store(c20, ref *c, 0); S.Store(c21, ref *c, n); c += ldc;
        S.Store(c30, ref *c, 0); S.Store(c31, ref *c, n); c += ldc;
        S.Store(c40, ref *c, 0); S.Store(c41, ref *c, n); c += ldc;
        S.Store(c50, ref *c, 0); S.Store(c51, ref *c, n); c += ldc;
        S.Store(c60, ref *c, 0); S.Store(c61, ref *c, n); c += ldc;
        S.Store(c70, ref *c, 0); S.Store(c71, ref *c, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile4x2<TV, S>(int k, float* a, nint rowStep, nint depthStep, float* b, int ldb, float* c, int ldc)
        where TV : struct where S : struct, ISimd<TV>
    {
        TV c00 = default, c01 = default, c10 = default, c11 = default;
        TV c20 = default, c21 = default, c30 = default, c31 = default;
        nint row2 = 2 * rowStep, row3 = 3 * rowStep;
        int n = S.Count;
        for (int p = 0; p < k; p++)
        {
            TV b0 = S.Load(ref *b, 0), b1 = S.Load(ref *b, n);
            TV a0 = S.Splat(a[0]);
            c00 = S.MulAdd(a0, b0, c00); c01 = S.MulAdd(a0, b1, c01);
            TV a1 = S.Splat(a[rowStep]);
            c10 = S.MulAdd(a1, b0, c10); c11 = S.MulAdd(a1, b1, c11);
            TV a2 = S.Splat(a[row2]);
            c20 = S.MulAdd(a2, b0, c20); c21 = S.MulAdd(a2, b1, c21);
            TV a3 = S.Splat(a[row3]);
            c30 = S.MulAdd(a3, b0, c30); c31 = S.MulAdd(a3, b1, c31);
            a += depthStep; b += ldb;
        }
        S.Store(c00, ref *c, 0); S.Store(c01, ref *c, n); c += ldc;
        S.Store(c10, ref *c, 0); S.Store(c11, ref *c, n); c += ldc;
        S.Store(c20, ref *c, 0); S.Store(c21, ref *c, n); c += ldc;
        S.Store(c30, ref *c, 0); S.Store(c31, ref *c, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile1x2<TV, S>(int k, float* a, nint depthStep, float* b, int ldb, float* c)
        where TV : struct where S : struct, ISimd<TV>
    {
        TV c0 = default, c1 = default;
        int n = S.Count;
        for (int p = 0; p < k; p++)
        {
            TV a0 = S.Splat(*a);
            c0 = S.MulAdd(a0, S.Load(ref *b, 0), c0);
            c1 = S.MulAdd(a0, S.Load(ref *b, n), c1);
            a += depthStep; b += ldb;
        }
        S.Store(c0, ref *c, 0); S.Store(c1, ref *c, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile1x1<TV, S>(int k, float* a, nint depthStep, float* b, int ldb, float* c)
        where TV : struct where S : struct, ISimd<TV>
    {
        TV c0 = default;
        for (int p = 0; p < k; p++)
        {
            c0 = S.MulAdd(S.Splat(*a), S.Load(ref *b, 0), c0);
            a += depthStep; b += ldb;
        }
        S.Store(c0, ref *c, 0);
    }
}
