using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>A linear layer's weight [out, in], packed once at load time into the B-panel layout of the
/// micro-kernel: ceil(out/NR) panels, each holding InFeatures groups of NR output features (zero padded).
/// The layout depends on NR, so a layout for another ISA path is built on first use from an existing one.</summary>
public sealed unsafe class PackedWeight
{
    sealed class Layout(int nr, float[] storage, float* panels)
    {
        public int NR { get; } = nr;
        public float[] Storage { get; } = storage;
        public float* Panels { get; } = panels;
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
        var storage = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(storage));
        float* panels = (float*)(((nuint)start + 63) & ~(nuint)63);
        fixed (float* w = weight)
            GemmPacking.PackB(w, inFeatures, transB: true, 0, outFeatures, 0, inFeatures, nr, panels);
        return new Layout(nr, storage, panels);
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
