namespace EdgeBert.Kernels;

/// <summary>The register tile of one ISA path: its shape and the code that computes it. The GEMM driver
/// (blocking, packing, threading, edge tiles, epilogue) is shared; only this part differs per ISA.</summary>
internal sealed unsafe class GemmMicroKernel
{
    public static readonly GemmMicroKernel Avx512 = new(GemmKernelAvx512.MR, GemmKernelAvx512.NR, &GemmKernelAvx512.Compute<FullHeight>, &GemmKernelAvx512.Compute<HalfHeight>);
    public static readonly GemmMicroKernel Avx2 = new(GemmKernelAvx2.MR, GemmKernelAvx2.NR, &GemmKernelAvx2.Compute<FullHeight>, &GemmKernelAvx2.Compute<HalfHeight>);
    public static readonly GemmMicroKernel Vector128 = new(GemmKernelVector128.MR, GemmKernelVector128.NR, &GemmKernelVector128.Compute<FullHeight>, &GemmKernelVector128.Compute<HalfHeight>);
    public static readonly GemmMicroKernel Scalar = new(GemmKernelScalar.MR, GemmKernelScalar.NR, &GemmKernelScalar.Compute, null);

    /// <summary>Largest MR * NR of any kernel, for the edge-tile scratch.</summary>
    public const int MaxTile = 16 * 32;

    public int MR { get; }
    public int NR { get; }

    /// <summary>(kc, packed A panel, packed B panel, C tile, ldc, loadC, bias or null, next B panel, next steps):
    /// a full MR x NR tile. The x86 kernels also fetch the first <c>nextSteps</c> k rows (NR floats each) of the
    /// B panel a later tile needs into L2, one row per k step; the others ignore those two arguments.</summary>
    public delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> Compute { get; }

    /// <summary>The same for only the first MR / 2 rows of the tile (same arithmetic, so the same bits), or null:
    /// a last panel that short then costs half a tile. (A BERT input of 9 tokens has 16 rows of tiles at MR = 8.)</summary>
    public delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> ComputeHalf { get; }

    GemmMicroKernel(int mr, int nr, delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> compute,
        delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> computeHalf)
    {
        MR = mr; NR = nr; Compute = compute; ComputeHalf = computeHalf;
    }

    public static GemmMicroKernel For(Isa isa) => isa switch
    {
        Isa.Avx512 => Avx512,
        Isa.Avx2 => Avx2,
        Isa.Vector128 => Vector128,
        _ => Scalar,
    };
}

/// <summary>Height of a micro-kernel instantiation: the whole MR rows, or the first MR / 2 for a short last
/// panel. A constant per struct type argument, so the JIT drops the other half's code from each instantiation.</summary>
internal interface ITileHeight { static abstract bool Half { get; } }

internal struct FullHeight : ITileHeight { public static bool Half => false; }

internal struct HalfHeight : ITileHeight { public static bool Half => true; }
