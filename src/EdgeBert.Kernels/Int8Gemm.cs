using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>The INT8 linear layer: activations quantized per row at run time (<see cref="Int8Quantization"/>),
/// an exact int32 product with a <see cref="QuantizedWeight"/> on the micro-kernel of its path, and the
/// dequantization fused into the store. With a pool of T threads the columns of C are split T ways, as in
/// <see cref="Gemm"/>.</summary>
public static unsafe class Int8Gemm
{
    /// <summary>C[m, w.OutFeatures] = epilogue((accumulate ? C : 0) + dequantized(q(A) q(W)^T) + bias),
    /// A [m, w.InFeatures].
    /// Per element, in float, in this order (what <c>Int8GemmReference</c> repeats bit for bit):
    /// <c>v = (float)acc * (sA[m] * sW[n]); if (accumulate) v = v + C[m,n]; if (bias) v = v + bias[n];</c>
    /// where acc = sum_k qA[m,k] qW[n,k] exactly in int32 (k is at most <see cref="QuantizedWeight.MaxInFeatures"/>);
    /// no fused multiply-add. Then GELU: <see cref="Activations.Gelu"/> on path <paramref name="isa"/> over each
    /// row's columns of a thread's part, which starts on a panel boundary (a multiple of 16), so every vector width
    /// splits a row the same way whatever the thread count: the bits are those of Activations.Gelu over the whole
    /// row.</summary>
    public static void Multiply(int m, ReadOnlySpan<float> a, int lda, QuantizedWeight w, Span<float> c, int ldc,
        bool accumulate = false, ReadOnlySpan<float> bias = default, GemmEpilogue epilogue = GemmEpilogue.None,
        WorkerPool? pool = null, Isa? isa = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        var geluPath = IsaSelector.Resolve(isa);
        int n = w.OutFeatures, k = w.InFeatures;
        if (m < 0) throw new ArgumentException($"negative row count m={m}");
        if (bias.Length != 0 && bias.Length < n)
            throw new ArgumentException($"bias has {bias.Length} values, C has {n} columns");
        Gemm.CheckOperand(nameof(a), a.Length, lda, m, k);
        Gemm.CheckOperand(nameof(c), c.Length, ldc, m, n);
        if (m == 0) return;
        fixed (float* pa = a, pc = c, pbias = bias, pscales = w.Scales)
        fixed (int* pshift = w.ShiftCorrection)
        {
            var job = Int8GemmJob.ForCurrentThread();
            job.Set(w, pscales, pshift, m, pa, lda, pc, ldc, accumulate, pbias, epilogue, geluPath);
            job.Run(pool);
        }
        GC.KeepAlive(w);
    }
}

/// <summary>One INT8 GEMM call as parallel work: rows of A are quantized in parts (phase one), then the columns of C
/// are computed in parts of whole NR panels (phase two). Per B panel every MR-row tile of A passes over it with the
/// whole depth k (no k blocking: the int32 sums are finished in registers). One instance per calling thread.</summary>
internal sealed unsafe class Int8GemmJob : IParallelWork
{
    /// <summary>Below this many multiply-adds per part a fork/join costs more than it saves.</summary>
    const long MinMacsPerPart = 1 << 18;
    const int ColumnPartsPerThread = 4;

    [ThreadStatic] static Int8GemmJob? t_job;

    public static Int8GemmJob ForCurrentThread() => t_job ??= new Int8GemmJob();

    Int8MicroKernel _kernel = Int8MicroKernel.Scalar;
    byte* _panels;
    long _panelBytes;
    float* _scalesW, _a, _c, _bias;
    int* _shift;
    int _m, _n, _k, _paddedK, _lda, _ldc, _panelCount, _parts;
    bool _accumulate, _quantizing;
    GemmEpilogue _epilogue;
    Isa _geluPath;

    // Quantized A: rows padded to a multiple of MR, each PaddedK elements; and one scale per row.
    nint _rowBytes;
    byte[] _quantizedStorage = [];
    byte* _quantized;
    float[] _rowScaleStorage = [];
    float* _rowScales;

    public void Set(QuantizedWeight w, float* scalesW, int* shift, int m, float* a, int lda, float* c, int ldc,
        bool accumulate, float* bias, GemmEpilogue epilogue, Isa geluPath)
    {
        _geluPath = geluPath;
        _kernel = w.Kernel; _panels = w.Panels; _panelBytes = w.PanelBytes; _scalesW = scalesW; _shift = shift;
        _m = m; _n = w.OutFeatures; _k = w.InFeatures; _paddedK = w.PaddedK;
        _a = a; _lda = lda; _c = c; _ldc = ldc; _accumulate = accumulate; _bias = bias; _epilogue = epilogue;
    }

    public void Run(WorkerPool? pool)
    {
        try
        {
            int threads = pool?.Threads ?? 1, mr = _kernel.MR;
            int paddedRows = (_m + mr - 1) / mr * mr;
            _rowBytes = (nint)_paddedK * _kernel.ElementBytes;
            EnsureBuffers((long)paddedRows * _rowBytes, paddedRows);
            _panelCount = (_n + _kernel.NR - 1) / _kernel.NR;
            long macs = (long)_m * _n * _k;

            _quantizing = true;
            _parts = (int)Math.Clamp((long)_m * _k / (MinMacsPerPart / 8), 1,
                Math.Min(_m, WorkerPool.PartLimit(threads, 2)));
            RunParts(pool);
            _quantizing = false;
            _parts = (int)Math.Clamp(Math.Min(macs / MinMacsPerPart, _panelCount), 1,
                WorkerPool.PartLimit(threads, ColumnPartsPerThread));
            RunParts(pool);
        }
        finally
        {
            _a = _c = _bias = _scalesW = null;
            _shift = null;
            _panels = null;
        }
    }

    void RunParts(WorkerPool? pool)
    {
        if (_parts == 1) Execute(0);
        else pool!.Run(this, _parts);
    }

    public void Execute(int part)
    {
        if (_quantizing)
        {
            int first = (int)((long)part * _m / _parts), last = (int)((long)(part + 1) * _m / _parts);
            for (int i = first; i < last; i++)
                _rowScales[i] = Int8Quantization.Row(_a + (long)i * _lda, _k, _paddedK, _quantized + i * _rowBytes,
                    _kernel);
        }
        else
        {
            int first = (int)((long)part * _panelCount / _parts), last = (int)((long)(part + 1) * _panelCount / _parts);
            if (first < last) ComputePanels(first, last);
        }
    }

    void ComputePanels(int firstPanel, int lastPanel)
    {
        int mr = _kernel.MR, nr = _kernel.NR, steps = _paddedK / _kernel.KPerGroup;
        var compute = _kernel.Compute;
        int* tile = stackalloc int[Int8MicroKernel.MaxTile];
        for (int panel = firstPanel; panel < lastPanel; panel++)
        {
            byte* b = _panels + panel * _panelBytes;
            int j0 = panel * nr, cols = Math.Min(nr, _n - j0);
            for (int i0 = 0; i0 < _m; i0 += mr)
            {
                compute(steps, _quantized + i0 * _rowBytes, _rowBytes, b, tile);
                Store(tile, nr, Math.Min(mr, _m - i0), cols, i0, j0);
            }
        }
        if (_epilogue == GemmEpilogue.Gelu)
        {
            int j0 = firstPanel * nr, width = Math.Min(lastPanel * nr, _n) - j0;
            for (int i = 0; i < _m; i++)
            {
                var row = new Span<float>(_c + (long)i * _ldc + j0, width);
                Activations.Gelu(row, row, _geluPath);
            }
        }
    }

    /// <summary>The dequantizing store of the documented float operations (<see cref="Int8Gemm.Multiply"/>); the vector
    /// loop does them lane by lane, so the bits equal the scalar tail's.</summary>
    void Store(int* tile, int nr, int rows, int cols, int i0, int j0)
    {
        float* scalesW = _scalesW + j0;
        float* bias = _bias == null ? null : _bias + j0;
        int* shift = _shift == null ? null : _shift + j0;
        int width = Vector<int>.Count;
        for (int r = 0; r < rows; r++)
        {
            float rowScale = _rowScales[i0 + r];
            int* acc = tile + r * nr;
            float* c = _c + (long)(i0 + r) * _ldc + j0;
            int j = 0;
            for (; j <= cols - width; j += width)
            {
                var sum = Vector.Load(acc + j);
                if (shift != null) sum -= Vector.Load(shift + j);
                var v = Vector.ConvertToSingle(sum) * (new Vector<float>(rowScale) * Vector.Load(scalesW + j));
                if (_accumulate) v += Vector.Load(c + j);
                if (bias != null) v += Vector.Load(bias + j);
                v.Store(c + j);
            }
            for (; j < cols; j++)
            {
                int sum = acc[j] - (shift != null ? shift[j] : 0);
                float v = sum * (rowScale * scalesW[j]);
                if (_accumulate) v += c[j];
                if (bias != null) v += bias[j];
                c[j] = v;
            }
        }
    }

    void EnsureBuffers(long quantizedBytes, int rows)
    {
        if (_quantizedStorage.Length < quantizedBytes + 64)
        {
            _quantizedStorage = GC.AllocateUninitializedArray<byte>(checked((int)(quantizedBytes + 64)), pinned: true);
            byte* start = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_quantizedStorage));
            _quantized = (byte*)(((nuint)start + 63) & ~(nuint)63);
        }
        if (_rowScaleStorage.Length < rows)
        {
            _rowScaleStorage = GC.AllocateUninitializedArray<float>(rows, pinned: true);
            _rowScales = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_rowScaleStorage));
        }
    }
}
