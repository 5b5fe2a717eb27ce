using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>A linear layer's weight [out, in], packed once at load time into the B-panel layout of one path's
/// micro-kernel: ceil(out/NR) panels, each holding InFeatures groups of NR output features (zero padded).
/// The layout depends on NR, so the weight carries its path and <see cref="Gemm"/> runs that one.</summary>
public sealed unsafe class PackedWeight : IDisposable
{
    readonly PanelMemory _memory;

    /// <summary>Rows of the weight (outputs of the layer).</summary>
    public int OutFeatures { get; }
    /// <summary>Columns of the weight (inputs of the layer).</summary>
    public int InFeatures { get; }

    /// <summary>The path this weight was packed for.</summary>
    public Isa Isa => Kernel.Isa;

    internal GemmMicroKernel Kernel { get; }

    /// <summary>The panels; valid as long as this object lives and is not disposed.</summary>
    internal float* Panels => _memory.Start;

    PackedWeight(int outFeatures, int inFeatures, GemmMicroKernel kernel, PanelMemory memory)
    {
        OutFeatures = outFeatures; InFeatures = inFeatures; Kernel = kernel; _memory = memory;
    }

    /// <summary>Packs weight [outFeatures, inFeatures] (row-major, as nn.Linear stores it) for the given path
    /// (null: <see cref="IsaSelector.Default"/>).</summary>
    public static PackedWeight FromLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures,
        Isa? isa = null)
    {
        if (outFeatures <= 0 || inFeatures <= 0)
            throw new ArgumentException($"weight shape [{outFeatures}, {inFeatures}] must be positive");
        if (weight.Length != (long)outFeatures * inFeatures)
        {
            throw new ArgumentException($"weight has {weight.Length} values, [{outFeatures}, {inFeatures}] needs "
                + $"{(long)outFeatures * inFeatures}");
        }
        var kernel = GemmMicroKernel.For(IsaSelector.Resolve(isa));
        int nr = kernel.NR;
        var memory = new PanelMemory((long)(outFeatures + nr - 1) / nr * nr * inFeatures);
        fixed (float* w = weight)
            GemmPacking.PackB(w, inFeatures, transB: true, 0, outFeatures, 0, inFeatures, nr, memory.Start);
        return new PackedWeight(outFeatures, inFeatures, kernel, memory);
    }

    /// <summary>Frees the panels now rather than at finalization; a product started afterwards throws
    /// ObjectDisposedException. The caller makes sure no product with this weight is still running.</summary>
    public void Dispose() => _memory.Dispose();
}

/// <summary>Where packed panels live. A weight of 2 MB or more gets native memory aligned to 2 MB and, on Linux,
/// asks for transparent huge pages (madvise MADV_HUGEPAGE): a forward pass streams every weight from memory once,
/// and with 4 KB pages each 48 KB panel slice spans a dozen pages and as many TLB misses (measurements:
/// docs/kernels.md). Smaller weights stay in a pinned array, where 2 MB alignment would waste most of a page.
/// Freed by Dispose when an owner (an engine) knows the weight is no longer used, else by the finalizer: Gemm keeps
/// the weight alive while in use.</summary>
internal sealed unsafe class PanelMemory : IDisposable
{
    /// <summary>Weights from this size on take the huge-page path.</summary>
    internal const long HugePageBytes = 2 << 20;
    const int MadviseHugePage = 14;
    readonly float[]? _array;
    readonly long _bytes;
    nint _native;
    float* _start;

    public float* Start => _start != null ? _start : throw new ObjectDisposedException("packed weight");

    public PanelMemory(long floats)
    {
        long bytes = floats * sizeof(float);
        if (bytes >= HugePageBytes)
        {
            void* native = NativeMemory.AlignedAlloc((nuint)bytes, (nuint)HugePageBytes);
            _native = (nint)native;
            _start = (float*)native;
            GC.AddMemoryPressure(bytes);
            if (OperatingSystem.IsLinux()) AdviseHugePages(native, bytes);
        }
        else
        {
            _array = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
            float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            _start = (float*)(((nuint)start + 63) & ~(nuint)63);
        }
        _bytes = bytes;
    }

    ~PanelMemory() => Free();

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    void Free()
    {
        _start = null;
        // Exchanged, so two disposals racing free the memory once.
        nint native = Interlocked.Exchange(ref _native, 0);
        if (native == 0) return;
        NativeMemory.AlignedFree((void*)native);
        GC.RemoveMemoryPressure(_bytes);
    }

    /// <summary>Only advice: a kernel without transparent huge pages, or a libc that cannot be found,
    /// leaves 4 KB pages.</summary>
    static void AdviseHugePages(void* address, long bytes)
    {
        try { _ = Madvise(address, (nuint)bytes, MadviseHugePage); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "madvise")]
    static extern int Madvise(void* address, nuint length, int advice);
}
