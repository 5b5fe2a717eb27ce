using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>A linear layer's weight [out, in], packed once at load time into the B-panel layout of the
/// micro-kernel: ceil(out/NR) panels, each holding InFeatures groups of NR output features (zero padded).
/// The layout depends on NR, so a layout for another ISA path is built on first use from an existing one.</summary>
public sealed unsafe class PackedWeight
{
    sealed class Layout(int nr, PanelMemory memory)
    {
        public int NR { get; } = nr;
        public PanelMemory Memory { get; } = memory;
        public float* Panels => Memory.Start;
    }

    readonly object _gate = new();
    volatile Layout[] _layouts;

    public int OutFeatures { get; }
    public int InFeatures { get; }

    PackedWeight(int outFeatures, int inFeatures, Layout first)
    {
        OutFeatures = outFeatures; InFeatures = inFeatures; _layouts = [first];
    }

    /// <summary>Packs weight [outFeatures, inFeatures] (row-major, as nn.Linear stores it) for the active ISA.</summary>
    public static PackedWeight FromLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures)
    {
        if (outFeatures <= 0 || inFeatures <= 0) throw new ArgumentException($"weight shape [{outFeatures}, {inFeatures}] must be positive");
        if (weight.Length != (long)outFeatures * inFeatures)
            throw new ArgumentException($"weight has {weight.Length} values, [{outFeatures}, {inFeatures}] needs {(long)outFeatures * inFeatures}");
        int nr = GemmMicroKernel.For(IsaSelector.Active).NR;
        return new PackedWeight(outFeatures, inFeatures, Pack(weight, outFeatures, inFeatures, nr));
    }

    /// <summary>The panels for a micro-kernel of width nr; valid as long as this object lives.</summary>
    internal float* PanelsFor(int nr)
    {
        foreach (var layout in _layouts) if (layout.NR == nr) return layout.Panels;
        lock (_gate)
        {
            foreach (var layout in _layouts) if (layout.NR == nr) return layout.Panels;
            var added = Pack(Unpack(_layouts[0]), OutFeatures, InFeatures, nr);
            _layouts = [.. _layouts, added];
            return added.Panels;
        }
    }

    static Layout Pack(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, int nr)
    {
        long floats = (long)(outFeatures + nr - 1) / nr * nr * inFeatures;
        var memory = new PanelMemory(floats);
        fixed (float* w = weight)
            GemmPacking.PackB(w, inFeatures, transB: true, 0, outFeatures, 0, inFeatures, nr, memory.Start);
        return new Layout(nr, memory);
    }

    float[] Unpack(Layout layout)
    {
        int nr = layout.NR, k = InFeatures;
        var weight = new float[(long)OutFeatures * k];
        for (int j = 0; j < OutFeatures; j++)
        {
            float* panel = layout.Panels + (long)(j / nr) * k * nr + j % nr;
            for (int p = 0; p < k; p++) weight[(long)j * k + p] = panel[(long)p * nr];
        }
        return weight;
    }
}

/// <summary>Where packed panels live. A weight of 2 MB or more gets native memory aligned to 2 MB and, on Linux,
/// asks for transparent huge pages (madvise MADV_HUGEPAGE; this machine's policy is "madvise"): a forward pass
/// streams every weight from memory once, and with 4 KB pages each 48 KB panel slice spans a dozen pages and as
/// many TLB misses. Alternating in one process, the weights out of cache (m = 128, BERT-base shapes): +1-6% median
/// GFLOP/s on 1 thread (two runs), +3-4% on 2. Smaller weights stay in a pinned array, where 2 MB alignment would waste most of a page.
/// Freed by the finalizer: a PackedWeight has no owner to dispose it, and Gemm keeps it alive while in use.</summary>
internal sealed unsafe class PanelMemory
{
    /// <summary>Weights from this size on take the huge-page path.</summary>
    internal const long HugePageBytes = 2 << 20;
    const int MadviseHugePage = 14;
    readonly float[]? _array;
    readonly void* _native;
    readonly long _bytes;

    public float* Start { get; }

    public PanelMemory(long floats)
    {
        long bytes = floats * sizeof(float);
        if (bytes >= HugePageBytes)
        {
            _native = NativeMemory.AlignedAlloc((nuint)bytes, (nuint)HugePageBytes);
            Start = (float*)_native;
            GC.AddMemoryPressure(bytes);
            if (OperatingSystem.IsLinux()) AdviseHugePages(_native, bytes);
        }
        else
        {
            _array = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
            float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            Start = (float*)(((nuint)start + 63) & ~(nuint)63);
        }
        _bytes = bytes;
    }

    ~PanelMemory()
    {
        if (_native == null) return;
        NativeMemory.AlignedFree(_native);
        GC.RemoveMemoryPressure(_bytes);
    }

    /// <summary>Only advice: a kernel without transparent huge pages, or a libc that cannot be found, leaves 4 KB pages.</summary>
    static void AdviseHugePages(void* address, long bytes)
    {
        try { _ = Madvise(address, (nuint)bytes, MadviseHugePage); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "madvise")]
    static extern int Madvise(void* address, nuint length, int advice);
}
