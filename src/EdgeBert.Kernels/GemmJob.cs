using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>One GEMM call as parallel work: the operands (pinned by the caller for the duration of
/// the call), and the loop nest that computes a range of columns of C. One instance per calling
/// thread, reused, so a call allocates nothing.</summary>
internal sealed unsafe class GemmJob : IParallelWork
{
    /// <summary>Depth of a k block: a packed B panel (KC x 32 floats) and A panel stay in L1/L2.</summary>
    internal const int KcMax = 384;
    /// <summary>Rows of A packed at once (MC x KC floats, kept in L2).</summary>
    internal const int McMax = 192;
    /// <summary>Columns of B packed at once when B is not pre-packed (KC x NC floats, in L2/L3).</summary>
    internal const int NcMax = 1024;
    /// <summary>Below this many multiply-adds per thread a fork/join costs more than it saves.</summary>
    const long MinMacsPerPart = 1 << 17;

    [ThreadStatic] static GemmJob? t_job;

    public static GemmJob ForCurrentThread() => t_job ??= new GemmJob();

    GemmMicroKernel _kernel = GemmMicroKernel.Scalar;
    int _m, _n, _k, _lda, _ldb, _ldc, _parts, _panels;
    float* _a, _b, _packedB, _c, _bias;
    bool _transA, _transB, _accumulate;
    GemmEpilogue _epilogue;

    public void Set(GemmMicroKernel kernel, int m, int n, int k, float* a, int lda, bool transA,
        float* b, int ldb, bool transB, float* packedB, float* c, int ldc, bool accumulate, float* bias, GemmEpilogue epilogue)
    {
        _kernel = kernel;
        _m = m; _n = n; _k = k;
        _a = a; _lda = lda; _transA = transA;
        _b = b; _ldb = ldb; _transB = transB; _packedB = packedB;
        _c = c; _ldc = ldc; _accumulate = accumulate; _bias = bias; _epilogue = epilogue;
    }

    public void Run(WorkerPool? pool)
    {
        _panels = (_n + _kernel.NR - 1) / _kernel.NR;
        long macs = (long)_m * _n * Math.Max(_k, 1);
        int threads = pool?.Threads ?? 1;
        _parts = (int)Math.Max(1, Math.Min(Math.Min(threads, _panels), macs / MinMacsPerPart));
        try
        {
            if (_parts == 1) Execute(0);
            else pool!.Run(this, _parts);
        }
        finally
        {
            _a = _b = _packedB = _c = _bias = null;
        }
    }

    /// <summary>Part p computes a contiguous range of whole NR panels of columns, so the tile grid,
    /// and hence every rounding, is the same for any number of threads.</summary>
    public void Execute(int part)
    {
        int nr = _kernel.NR;
        int first = (int)((long)part * _panels / _parts), last = (int)((long)(part + 1) * _panels / _parts);
        if (first < last) ComputeColumns(first * nr, Math.Min(last * nr, _n));
    }

    void ComputeColumns(int n0, int n1)
    {
        if (_k == 0) { WithoutProduct(n0, n1); return; }
        var scratch = GemmScratch.ForCurrentThread();
        var kernel = _kernel;
        int mr = kernel.MR, nr = kernel.NR;
        int kcStep = EvenStep(_k, KcMax, 1);
        int mcStep = EvenStep(_m, McMax, mr);
        int ncStep = _packedB != null ? n1 - n0 : NcMax;
        for (int jc = n0; jc < n1; jc += ncStep)
        {
            int nc = Math.Min(ncStep, n1 - jc);
            for (int pc = 0; pc < _k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, _k - pc);
                float* bBlock;
                long panelStride;
                if (_packedB != null)
                {
                    panelStride = (long)_k * nr;
                    bBlock = _packedB + jc / nr * panelStride + (long)pc * nr;
                }
                else
                {
                    panelStride = (long)kc * nr;
                    GemmPacking.PackB(_b, _ldb, _transB, jc, nc, pc, kc, nr, scratch.B);
                    bBlock = scratch.B;
                }
                bool firstBlock = pc == 0, lastBlock = pc + kc == _k;
                bool loadC = _accumulate || !firstBlock;
                float* biasBlock = firstBlock && _bias != null ? _bias + jc : null;
                for (int ic = 0; ic < _m; ic += mcStep)
                {
                    int mc = Math.Min(mcStep, _m - ic);
                    GemmPacking.PackA(_a, _lda, _transA, ic, mc, pc, kc, mr, scratch.A);
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int cols = Math.Min(nr, nc - jr);
                        float* bPanel = bBlock + jr / nr * panelStride;
                        float* biasTile = biasBlock == null ? null : biasBlock + jr;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int rows = Math.Min(mr, mc - ir);
                            float* aPanel = scratch.A + (long)(ir / mr) * kc * mr;
                            float* cTile = _c + (long)(ic + ir) * _ldc + jc + jr;
                            if (rows == mr && cols == nr)
                                kernel.Compute(kc, aPanel, bPanel, cTile, _ldc, loadC, biasTile);
                            else
                            {
                                // Edge tile: compute the full tile into scratch, then merge only the valid part.
                                kernel.Compute(kc, aPanel, bPanel, scratch.Tile, nr, false, null);
                                MergeEdge(scratch.Tile, nr, cTile, _ldc, rows, cols, loadC, biasTile);
                            }
                        }
                    }
                    if (lastBlock && _epilogue == GemmEpilogue.Gelu)
                        for (int i = ic; i < ic + mc; i++) GeluInPlace(_c + (long)i * _ldc + jc, nc);
                }
            }
        }
    }

    /// <summary>Same arithmetic order as the kernels' store: (tile + C) + bias.</summary>
    static void MergeEdge(float* tile, int ldt, float* c, int ldc, int rows, int cols, bool loadC, float* bias)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                float v = tile[i * ldt + j];
                if (loadC) v += c[(long)i * ldc + j];
                if (bias != null) v += bias[j];
                c[(long)i * ldc + j] = v;
            }
    }

    /// <summary>k = 0: the product is empty, only the bias, accumulation and epilogue remain.</summary>
    void WithoutProduct(int n0, int n1)
    {
        for (int i = 0; i < _m; i++)
        {
            float* row = _c + (long)i * _ldc;
            for (int j = n0; j < n1; j++)
            {
                float v = _accumulate ? row[j] : 0f;
                if (_bias != null) v += _bias[j];
                row[j] = v;
            }
            if (_epilogue == GemmEpilogue.Gelu) GeluInPlace(row + n0, n1 - n0);
        }
    }

    static void GeluInPlace(float* x, int length)
    {
        var span = new Span<float>(x, length);
        Activations.Gelu(span, span);
    }

    /// <summary>Splits total into equal blocks of at most max (rounded up to a multiple of unit),
    /// so no block is a thin leftover.</summary>
    static int EvenStep(int total, int max, int unit)
    {
        int blocks = (total + max - 1) / max;
        int step = (total + blocks - 1) / blocks;
        return (step + unit - 1) / unit * unit;
    }
}

/// <summary>Per-thread packing buffers, 64-byte aligned and pinned, allocated once per thread.</summary>
internal sealed unsafe class GemmScratch
{
    [ThreadStatic] static GemmScratch? t_scratch;

    public static GemmScratch ForCurrentThread() => t_scratch ??= new GemmScratch();

    readonly float[] _storage;
    public float* A { get; }
    public float* B { get; }
    public float* Tile { get; }

    GemmScratch()
    {
        const int aFloats = (GemmJob.McMax + 16) * GemmJob.KcMax;
        const int bFloats = GemmJob.KcMax * GemmJob.NcMax;
        const int align = 16; // floats in 64 bytes
        _storage = GC.AllocateUninitializedArray<float>(aFloats + bFloats + GemmMicroKernel.MaxTile + 4 * align, pinned: true);
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage));
        float* p = (float*)(((nuint)start + 63) & ~(nuint)63);
        A = p; p += aFloats;
        B = p; p += bFloats;
        Tile = p;
    }
}
