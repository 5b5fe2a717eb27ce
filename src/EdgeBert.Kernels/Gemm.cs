namespace EdgeBert.Kernels;

/// <summary>What the GEMM applies to each finished element of C.</summary>
public enum GemmEpilogue
{
    /// <summary>The product plus bias, as it is.</summary>
    None,
    /// <summary>GELU (the exact erf form) of the product plus bias.</summary>
    Gelu,
}

/// <summary>Single-precision matrix multiply, BLIS style: the driver blocks the product (NC, KC, MC),
/// packs A and B blocks into panels, and hands MR x NR tiles to the micro-kernel of the given path
/// (null: <see cref="IsaSelector.Default"/>; a packed weight brings its own). With a pool of T threads the
/// columns of C are split T ways (splitting M = 128 in two would leave a large edge tile, DESIGN.md 7).</summary>
public static unsafe class Gemm
{
    /// <summary>C[m,n] = epilogue((accumulate ? C : 0) + op(A) * op(B) + bias[n]).
    /// op(A) is A [m,k] with leading dimension lda, or (transA) A^T of A stored [k,m];
    /// op(B) is B [k,n] with ldb, or (transB) B^T of B stored [n,k] (the nn.Linear weight layout).</summary>
    public static void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, bool transA,
        ReadOnlySpan<float> b, int ldb, bool transB, Span<float> c, int ldc,
        bool accumulate = false, ReadOnlySpan<float> bias = default, GemmEpilogue epilogue = GemmEpilogue.None,
        WorkerPool? pool = null, Isa? isa = null)
    {
        var kernel = GemmMicroKernel.For(IsaSelector.Resolve(isa));
        CheckShapes(m, n, k, c.Length, ldc, bias.Length);
        CheckOperand(nameof(a), a.Length, lda, transA ? k : m, transA ? m : k);
        CheckOperand(nameof(b), b.Length, ldb, transB ? n : k, transB ? k : n);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
        {
            var job = GemmJob.ForCurrentThread();
            job.Set(kernel, m, n, k, pa, lda, transA, pb, ldb, transB, null, pc, ldc, accumulate, pbias, epilogue);
            job.Run(pool);
        }
    }

    /// <summary>The forward pass of a linear layer: C[m, w.OutFeatures] = epilogue((accumulate ? C : 0)
    /// + A[m, w.InFeatures] * W^T + bias), with W packed once at load time for the path it runs
    /// (<see cref="PackedWeight.Isa"/>).</summary>
    public static void Multiply(int m, ReadOnlySpan<float> a, int lda, PackedWeight w, Span<float> c, int ldc,
        bool accumulate = false, ReadOnlySpan<float> bias = default, GemmEpilogue epilogue = GemmEpilogue.None,
        WorkerPool? pool = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        int n = w.OutFeatures, k = w.InFeatures;
        CheckShapes(m, n, k, c.Length, ldc, bias.Length);
        CheckOperand(nameof(a), a.Length, lda, m, k);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a, pc = c, pbias = bias)
        {
            var job = GemmJob.ForCurrentThread();
            job.Set(w.Kernel, m, n, k, pa, lda, false, null, 0, true, w.Panels, pc, ldc, accumulate, pbias,
                epilogue);
            job.Run(pool);
        }
        GC.KeepAlive(w);
    }

    static void CheckShapes(int m, int n, int k, int cLength, int ldc, int biasLength)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"negative GEMM shape m={m} n={n} k={k}");
        if (biasLength != 0 && biasLength < n)
            throw new ArgumentException($"bias has {biasLength} values, C has {n} columns");
        CheckOperand("c", cLength, ldc, m, n);
    }

    /// <summary>A rows x cols matrix stored row-major with leading dimension ld must fit the span.</summary>
    internal static void CheckOperand(string name, int length, int ld, int rows, int cols)
    {
        if (rows == 0 || cols == 0) return;
        if (ld < cols)
            throw new ArgumentException($"leading dimension of {name} is {ld}, less than its {cols} columns");
        long needed = (long)(rows - 1) * ld + cols;
        if (length < needed)
        {
            throw new ArgumentException(
                $"{name} has {length} values, a {rows}x{cols} matrix with leading dimension {ld} needs {needed}");
        }
    }
}
