using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>The register tile of one ISA path: its shape and the code that computes it. The GEMM driver
/// (blocking, packing, threading, edge tiles, epilogue) is shared; only this part differs per ISA.</summary>
internal sealed unsafe class GemmMicroKernel
{
    public static readonly GemmMicroKernel Avx512 = Vector<Vector512<float>, Simd512, EightRows>(Isa.Avx512);
    public static readonly GemmMicroKernel Avx2 = Vector<Vector256<float>, Simd256, SixRows>(Isa.Avx2);
    public static readonly GemmMicroKernel Vector128 = Vector<Vector128<float>, Simd128, SixRows>(Isa.Vector128);
    public static readonly GemmMicroKernel Scalar = new(Isa.Scalar, GemmKernelScalar.MR, GemmKernelScalar.NR,
        &GemmKernelScalar.Compute, null);

    /// <summary>Largest MR * NR of any kernel, for the edge-tile scratch.</summary>
    public const int MaxTile = 16 * 32;

    /// <summary>The path of this kernel, which the GEMM's epilogue runs too.</summary>
    public Isa Isa { get; }
    public int MR { get; }
    public int NR { get; }

    /// <summary>(kc, packed A panel, packed B panel, C tile, ldc, loadC, bias or null, next B panel, next steps):
    /// a full MR x NR tile. On x86 the vector kernels also fetch the first <c>nextSteps</c> k rows (NR floats
    /// each) of the B panel a later tile needs into L2, one row per k step; the others ignore those two arguments.
    /// </summary>
    public delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> Compute { get; }

    /// <summary>The same for only the first MR / 2 rows of the tile (same arithmetic, so the same bits), or null:
    /// a last panel that short then costs half a tile. (A BERT input of 9 tokens has 16 rows of tiles at MR = 8.)
    /// </summary>
    public delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> ComputeHalf { get; }

    GemmMicroKernel(Isa isa, int mr, int nr,
        delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> compute,
        delegate*<int, float*, float*, float*, int, bool, float*, float*, int, void> computeHalf)
    {
        Isa = isa; MR = mr; NR = nr; Compute = compute; ComputeHalf = computeHalf;
    }

    static GemmMicroKernel Vector<TV, S, T>(Isa isa)
        where TV : struct where S : struct, ISimd<TV> where T : struct, ITileShape =>
        new(isa, GemmKernelSimd<TV, S, T>.MR, GemmKernelSimd<TV, S, T>.NR,
            &GemmKernelSimd<TV, S, T>.Compute<FullHeight>, &GemmKernelSimd<TV, S, T>.Compute<HalfHeight>);

    public static GemmMicroKernel For(Isa isa) => isa switch
    {
        Isa.Avx512 => Avx512,
        Isa.Avx2 => Avx2,
        Isa.Vector128 => Vector128,
        _ => Scalar,
    };
}

/// <summary>Height of a micro-kernel instantiation: the whole MR rows, or the first MR / 2 for a short last
/// panel. A constant per struct type argument, so the JIT drops the other half's code from each instantiation.
/// </summary>
internal interface ITileHeight { static abstract bool Half { get; } }

internal struct FullHeight : ITileHeight { public static bool Half => false; }

internal struct HalfHeight : ITileHeight { public static bool Half => true; }
