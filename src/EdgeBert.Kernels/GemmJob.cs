using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>One GEMM call as parallel work: the operands (pinned by the caller for the duration of
/// the call) and the loop nest. A chunk of rows of op(A) is packed once, shared by all threads
/// (phase one, in parts of whole MR-row panels); then the columns of C are computed in parts of whole
/// NR panels (phase two). There are a few parts per thread, claimed dynamically, so a thread whose
/// core is taken by another process does not hold everyone up. One instance per calling thread,
/// reused, so a call allocates nothing once its buffers have grown.</summary>
internal sealed unsafe class GemmJob : IParallelWork
{
    /// <summary>Depth of a k block for A taller than <see cref="TallRows"/> (not sensitive: docs/kernels.md),
    /// and the most any product uses (it sizes the B scratch).</summary>
    internal const int KcMax = 384;
    /// <summary>Depth of a k block when A has at most <see cref="TallRows"/> rows: a B panel of 192 x 32 floats
    /// (24 KB) and an A panel (6 KB) both stay in L1 while the tiles of a panel pass (measured: docs/kernels.md).
    /// </summary>
    internal const int KcShort = 192;
    /// <summary>Rows of the packed A block one pass over a B panel uses (MC x KC floats, in L2).</summary>
    internal const int McMax = 192;
    /// <summary>Columns of B packed at once when B is not pre-packed (KC x NC floats, in L2/L3).</summary>
    internal const int NcMax = 1024;
    /// <summary>Columns of a pre-packed B one pass over the row blocks uses: KC x 512 floats (768 KB) stay in
    /// L2 while every row block of A passes over them. A whole part instead (3072 columns of an FFN weight on
    /// one thread) streams 4.7 MB from L3 once per row block, which shows at tall A (batch 8: m = 1024).</summary>
    internal const int NcPacked = 512;
    /// <summary>Above this many rows of A a pre-packed B block is done A panel by A panel: one A panel (MR x KC,
    /// 12 KB) stays in L1 while it passes over every B panel of the block (KC x NcPacked, in L2). The usual order
    /// (a B panel, 48 KB, which L1 cannot hold, passes over an MC-row block of A) is as fast up to 512 rows
    /// (measured: docs/kernels.md).</summary>
    internal const int TallRows = 512;
    /// <summary>Packed A is bounded (8 MB); taller products are done in chunks of rows.</summary>
    const long MaxPackedA = 1 << 21;
    /// <summary>Below this many multiply-adds per part a fork/join costs more than it saves.</summary>
    const long MinMacsPerPart = 1 << 17;
    /// <summary>Row parts of the packing phase per thread: enough to rebalance when a core is busy.</summary>
    const int PackPartsPerThread = 3;
    /// <summary>Column parts per thread: enough to rebalance when a core is busy, few enough to keep
    /// several NR panels per part (they shrink toward the end: <see cref="ColumnBoundary"/>).</summary>
    const int ColumnPartsPerThread = 4;

    [ThreadStatic] static GemmJob? t_job;

    public static GemmJob ForCurrentThread() => t_job ??= new GemmJob();

    GemmMicroKernel _kernel = GemmMicroKernel.Scalar;
    int _m, _n, _k, _lda, _ldb, _ldc;
    float* _a, _b, _packedB, _c, _bias;
    bool _transA, _transB, _accumulate;
    GemmEpilogue _epilogue;

    // The chunk in flight: rows [_row0, _row0 + _rows) of op(A), packed at _packedA.
    int _row0, _rows, _kcStep, _mcStep, _panels, _parts;
    bool _packing;
    float[] _packedAStorage = [];
    float* _packedA;

    public void Set(GemmMicroKernel kernel, int m, int n, int k, float* a, int lda, bool transA,
        float* b, int ldb, bool transB, float* packedB, float* c, int ldc, bool accumulate, float* bias,
        GemmEpilogue epilogue)
    {
        _kernel = kernel;
        _m = m; _n = n; _k = k;
        _a = a; _lda = lda; _transA = transA;
        _b = b; _ldb = ldb; _transB = transB; _packedB = packedB;
        _c = c; _ldc = ldc; _accumulate = accumulate; _bias = bias; _epilogue = epilogue;
    }

    public void Run(WorkerPool? pool)
    {
        try
        {
            int mr = _kernel.MR, nr = _kernel.NR;
            int threads = pool?.Threads ?? 1;
            _panels = (_n + nr - 1) / nr;
            int chunkRows = (int)Math.Max(mr, MaxPackedA / Math.Max(_k, 1) / mr * mr);
            for (_row0 = 0; _row0 < _m; _row0 += chunkRows)
            {
                _rows = Math.Min(chunkRows, _m - _row0);
                _kcStep = EvenStep(Math.Max(_k, 1), _rows > TallRows ? KcMax : KcShort, 1);
                _mcStep = EvenStep(_rows, McMax, mr);
                int rowPanels = (_rows + mr - 1) / mr;
                long macs = (long)_rows * _n * Math.Max(_k, 1);
                if (_k > 0)
                {
                    EnsurePackedA((long)rowPanels * mr * _k);
                    _packing = true;
                    long packParts = Math.Min((long)_rows * _k / (MinMacsPerPart / 4), rowPanels);
                    _parts = (int)Math.Clamp(packParts, 1, WorkerPool.PartLimit(threads, PackPartsPerThread));
                    RunParts(pool);
                }
                _packing = false;
                long columnParts = Math.Min(macs / MinMacsPerPart, _panels);
                _parts = (int)Math.Clamp(columnParts, 1, WorkerPool.PartLimit(threads, ColumnPartsPerThread));
                RunParts(pool);
            }
        }
        finally
        {
            _a = _b = _packedB = _c = _bias = null;
        }
    }

    void RunParts(WorkerPool? pool)
    {
        if (_parts == 1) Execute(0);
        else pool!.Run(this, _parts);
    }

    public void Execute(int part)
    {
        if (_packing)
        {
            int mr = _kernel.MR, rowPanels = (_rows + mr - 1) / mr;
            int first = (int)((long)part * rowPanels / _parts), last = (int)((long)(part + 1) * rowPanels / _parts);
            if (first < last) PackRows(first * mr, Math.Min(last * mr, _rows));
        }
        else
        {
            // Whole NR panels per part, so the tile grid, and hence every rounding, is the same for any thread count.
            int nr = _kernel.NR;
            int first = ColumnBoundary(part), last = ColumnBoundary(part + 1);
            if (first < last) ComputeColumns(first * nr, Math.Min(last * nr, _n));
        }
    }

    /// <summary>First NR panel of a column part. Parts are claimed in order and shrink toward the end (part p
    /// starts at 1 - (1 - p / parts)^2 of the panels), so the last ones are small and the threads finish
    /// together: with equal parts, a thread slowed by another tenant left the other idle for most of a part at
    /// every product (measured: docs/kernels.md).</summary>
    int ColumnBoundary(int part)
    {
        if (_parts <= 2) return (int)((long)part * _panels / _parts);
        double rest = 1 - (double)part / _parts;
        return (int)Math.Round(_panels * (1 - rest * rest));
    }

    void EnsurePackedA(long floats)
    {
        if (_packedAStorage.Length >= floats + 16) return;
        _packedAStorage = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_packedAStorage));
        _packedA = (float*)(((nuint)start + 63) & ~(nuint)63);
    }

    /// <summary>Packed A of the chunk: k block at pc starts at pc * paddedRows; inside it, MR-row panels of
    /// kc x MR.</summary>
    void PackRows(int r0, int r1)
    {
        int mr = _kernel.MR;
        long paddedRows = (_rows + mr - 1) / mr * mr;
        for (int pc = 0; pc < _k; pc += _kcStep)
        {
            int kc = Math.Min(_kcStep, _k - pc);
            float* panels = _packedA + pc * paddedRows + (long)r0 * kc;
            GemmPacking.PackA(_a, _lda, _transA, _row0 + r0, r1 - r0, pc, kc, mr, panels);
        }
    }

    void ComputeColumns(int n0, int n1)
    {
        if (_k == 0) { WithoutProduct(n0, n1); return; }
        var scratch = GemmScratch.ForCurrentThread();
        int mr = _kernel.MR, nr = _kernel.NR;
        int kcStep = _kcStep, mcStep = _mcStep, rows = _rows;
        long paddedRows = (rows + mr - 1) / mr * mr;
        float* cChunk = _c + (long)_row0 * _ldc;
        int ncStep = _packedB != null ? NcPacked : NcMax;
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
                float* aBlock = _packedA + pc * paddedRows;
                bool firstBlock = pc == 0, lastBlock = pc + kc == _k;
                bool loadC = _accumulate || !firstBlock;
                float* biasBlock = firstBlock && _bias != null ? _bias + jc : null;
                if (_packedB != null && rows > TallRows)
                {
                    for (int ir = 0; ir < rows; ir += mr)
                    {
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            Tile(kc, ir, jr, aBlock, bBlock + jr / nr * panelStride, cChunk + (long)ir * _ldc + jc + jr,
                                loadC, biasBlock, nc, null, 0);
                        }
                        if (lastBlock && _epilogue == GemmEpilogue.Gelu)
                        {
                            for (int i = ir; i < Math.Min(ir + mr, rows); i++)
                                GeluInPlace(cChunk + (long)i * _ldc + jc, nc);
                        }
                    }
                    continue;
                }
                for (int ic = 0; ic < rows; ic += mcStep)
                {
                    int mc = Math.Min(mcStep, rows - ic);
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        float* bPanel = bBlock + jr / nr * panelStride;
                        var prefetch = _packedB != null
                            ? NextPanelPrefetch(jc, jr, nc, pc, kc, ic + mc >= rows, (mc + mr - 1) / mr, bPanel,
                                panelStride)
                            : default;
                        for (int ir = ic; ir < ic + mc; ir += mr)
                        {
                            float* next = prefetch.Take(out int nextSteps);
                            Tile(kc, ir, jr, aBlock, bPanel, cChunk + (long)ir * _ldc + jc + jr, loadC, biasBlock, nc,
                                next, nextSteps);
                        }
                    }
                    if (lastBlock && _epilogue == GemmEpilogue.Gelu)
                        for (int i = ic; i < ic + mc; i++) GeluInPlace(cChunk + (long)i * _ldc + jc, nc);
                }
            }
        }
    }

    /// <summary>One MR x NR tile of C at row ir and column jr of the current block (an edge tile is computed
    /// into scratch, by the half-height kernel when its rows fit, then only its valid part is merged); the
    /// kernel also fetches nextSteps k rows of a later B panel from next.</summary>
    void Tile(int kc, int ir, int jr, float* aBlock, float* bPanel, float* cTile, bool loadC, float* biasBlock, int nc,
        float* next, int nextSteps)
    {
        int mr = _kernel.MR, nr = _kernel.NR;
        int tileRows = Math.Min(mr, _rows - ir), cols = Math.Min(nr, nc - jr);
        float* aPanel = aBlock + (long)ir * kc;
        float* biasTile = biasBlock == null ? null : biasBlock + jr;
        var compute = _kernel.Compute;
        int computedRows = mr;
        if (tileRows <= mr / 2 && _kernel.ComputeHalf != null) { compute = _kernel.ComputeHalf; computedRows = mr / 2; }
        if (tileRows == computedRows && cols == nr)
            compute(kc, aPanel, bPanel, cTile, _ldc, loadC, biasTile, next, nextSteps);
        else
        {
            var scratch = GemmScratch.ForCurrentThread();
            compute(kc, aPanel, bPanel, scratch.Tile, nr, false, null, next, nextSteps);
            MergeEdge(scratch.Tile, nr, cTile, _ldc, tileRows, cols, loadC, biasTile);
        }
    }

    /// <summary>Pre-packed weights come from L3 or memory once per call (a BERT-base forward reads 340 MB of
    /// them), so while the tiles of one B panel compute, the next panel is fetched into L2, its k rows shared
    /// out over those tiles and, inside each, one row per k step. Spread this way rather than issued in a burst
    /// before each tile, where a short A (few tiles per panel: gated layers, short inputs) queued hundreds of
    /// prefetches at once and stalled on them (measured: docs/kernels.md).</summary>
    PanelPrefetch NextPanelPrefetch(int jc, int jr, int nc, int pc, int kc, bool lastRowBlock, int tiles,
        float* bPanel, long panelStride)
    {
        int nr = _kernel.NR;
        float* next;
        int nextKc;
        if (jr + nr < nc) { next = bPanel + panelStride; nextKc = kc; }
        else if (pc + kc < _k && lastRowBlock)
        {
            next = _packedB + jc / nr * panelStride + (long)(pc + kc) * nr;
            nextKc = Math.Min(_kcStep, _k - pc - kc);
        }
        else return default;
        return new PanelPrefetch(next, nr, nextKc, (nextKc + tiles - 1) / tiles);
    }

    /// <summary>The next B panel's k rows, handed out a share per tile.</summary>
    struct PanelPrefetch(float* panel, int nr, int rows, int rowsPerTile)
    {
        int _done;

        public float* Take(out int count)
        {
            count = Math.Min(rowsPerTile, rows - _done);
            float* start = panel + (long)_done * nr;
            _done += count;
            return start;
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
        for (int i = _row0; i < _row0 + _rows; i++)
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

    void GeluInPlace(float* x, int length)
    {
        var span = new Span<float>(x, length);
        Activations.Gelu(span, span, _kernel.Isa);
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

/// <summary>Per-thread buffers for B blocks and edge tiles, 64-byte aligned and pinned, allocated once per thread.
/// </summary>
internal sealed unsafe class GemmScratch
{
    [ThreadStatic] static GemmScratch? t_scratch;

    public static GemmScratch ForCurrentThread() => t_scratch ??= new GemmScratch();

    readonly float[] _storage;
    public float* B { get; }
    public float* Tile { get; }

    GemmScratch()
    {
        const int bFloats = GemmJob.KcMax * GemmJob.NcMax;
        _storage = GC.AllocateUninitializedArray<float>(bFloats + GemmMicroKernel.MaxTile + 16, pinned: true);
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage));
        float* p = (float*)(((nuint)start + 63) & ~(nuint)63);
        B = p; p += bFloats;
        Tile = p;
    }
}
