namespace EdgeBert.Kernels;

/// <summary>The register tile of one INT8 path. Operands are in groups of 4 bytes: a group of packed B is one
/// column's next 4 int8 values (or 2 int16 values when <see cref="ElementBytes"/> is 2), NR columns side by side;
/// a row of quantized A is row-major with the same element type, so 4 bytes of it broadcast to every lane.
/// Compute(steps, A rows, bytes between A rows, B panel, acc) writes the MR x NR int32 sums over steps groups
/// to acc (row-major, NR per row); rows past the last of A are computed from padding and dropped by the
/// caller.</summary>
internal sealed unsafe class Int8MicroKernel
{
    public static readonly Int8MicroKernel Avx512Vnni =
        new(Int8KernelAvx512Vnni.MR, Int8KernelAvx512Vnni.NR, 1, true, &Int8KernelAvx512Vnni.Compute);
    public static readonly Int8MicroKernel AvxVnni =
        new(Int8Kernel256<VnniDot>.MR, Int8Kernel256<VnniDot>.NR, 1, true, &Int8Kernel256<VnniDot>.Compute);
    public static readonly Int8MicroKernel Avx512Bw =
        new(Int8KernelAvx512Bw.MR, Int8KernelAvx512Bw.NR, 2, false, &Int8KernelAvx512Bw.Compute);
    public static readonly Int8MicroKernel Avx2 =
        new(Int8Kernel256<Int16Dot>.MR, Int8Kernel256<Int16Dot>.NR, 2, false, &Int8Kernel256<Int16Dot>.Compute);
    public static readonly Int8MicroKernel ArmDot =
        new(Int8KernelArmDot.MR, Int8KernelArmDot.NR, 1, false, &Int8KernelArmDot.Compute);
    public static readonly Int8MicroKernel Scalar =
        new(Int8KernelScalar.MR, Int8KernelScalar.NR, 1, false, &Int8KernelScalar.Compute);

    /// <summary>Largest MR * NR of any kernel, for the accumulator tile on the stack.</summary>
    public const int MaxTile = 8 * 48;

    public int MR { get; }
    public int NR { get; }
    /// <summary>1: int8 operands; 2: int8 values widened to int16 (the vpmaddwd route).</summary>
    public int ElementBytes { get; }
    /// <summary>Values of k per 4-byte group.</summary>
    public int KPerGroup => 4 / ElementBytes;
    /// <summary>A is stored as u8 = q + 128 (vpdpbusd multiplies u8 by s8); the driver subtracts
    /// 128 * colsum(q_w).</summary>
    public bool ShiftedActivations { get; }
    public delegate*<int, byte*, nint, byte*, int*, void> Compute { get; }

    Int8MicroKernel(int mr, int nr, int elementBytes, bool shifted,
        delegate*<int, byte*, nint, byte*, int*, void> compute)
    {
        MR = mr; NR = nr; ElementBytes = elementBytes; ShiftedActivations = shifted; Compute = compute;
    }

    public static Int8MicroKernel For(Int8Path path) => path switch
    {
        Int8Path.Avx512Vnni => Avx512Vnni,
        Int8Path.AvxVnni => AvxVnni,
        Int8Path.Avx512Bw => Avx512Bw,
        Int8Path.Avx2 => Avx2,
        Int8Path.ArmDot => ArmDot,
        _ => Scalar,
    };
}
