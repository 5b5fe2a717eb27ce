using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>The instruction route of the INT8 GEMM. A <see cref="QuantizedWeight"/> is packed for one path and
/// carries it, so there is no process-wide switch: each weight runs the path it was packed for.</summary>
public enum Int8Path
{
    /// <summary>Plain loops; any CPU.</summary>
    Scalar,
    /// <summary>ARM64 sdot (s8 x s8 -> i32 over Vector128).</summary>
    ArmDot,
    /// <summary>AVX2: the AVX-512BW route at 256 bits, for x64 CPUs without VNNI or AVX-512.</summary>
    Avx2,
    /// <summary>AVX-512BW: int8 values held as int16 (widened when packed or quantized), vpmaddwd (exact).</summary>
    Avx512Bw,
    /// <summary>AVX-VNNI vpdpbusd over 256 bits (u8 x s8 -> i32): activations shifted by +128.</summary>
    AvxVnni,
    /// <summary>AVX-512 VNNI vpdpbusd over 512 bits, in machine code emitted at start-up (Linux x64): the AvxVnni
    /// layout on a wider tile.</summary>
    Avx512Vnni,
}

/// <summary>Which INT8 paths this CPU runs, the best of them, and the default:
/// EDGEBERT_INT8=avx512vnni|avxvnni|avx512bw|avx2|armdot|scalar overrides the best (read once at start-up, like
/// EDGEBERT_ISA).</summary>
public static class Int8Paths
{
    /// <summary>The fastest path this CPU runs.</summary>
    public static Int8Path Best { get; } = Detect();

    /// <summary>The path a weight is packed for when none is named.</summary>
    public static Int8Path Default { get; } = FromSetting(Environment.GetEnvironmentVariable("EDGEBERT_INT8")) ?? Best;

    /// <summary>Every path this CPU can run.</summary>
    public static IReadOnlyList<Int8Path> Supported { get; } = Enum.GetValues<Int8Path>().Where(IsSupported).ToArray();

    /// <summary>Whether this CPU (and this binary) can run <paramref name="path"/>.</summary>
    public static bool IsSupported(Int8Path path) => path switch
    {
        Int8Path.Scalar => true,
        Int8Path.ArmDot => Dp.IsSupported,
        Int8Path.Avx2 => Avx2.IsSupported,
        Int8Path.Avx512Bw => Avx512BW.IsSupported,
        Int8Path.AvxVnni => AvxVnni.IsSupported,
        Int8Path.Avx512Vnni => Int8KernelAvx512Vnni.IsSupported,
        _ => false,
    };

    /// <summary>The path's name as EDGEBERT_INT8 takes it.</summary>
    public static string Name(Int8Path path) => path.ToString().ToLowerInvariant();

    /// <summary>Reads a name as <see cref="Name"/> writes it.</summary>
    public static bool TryParse(string text, out Int8Path path)
    {
        foreach (var candidate in Enum.GetValues<Int8Path>())
            if (string.Equals(Name(candidate), text, StringComparison.OrdinalIgnoreCase))
            {
                path = candidate;
                return true;
            }
        path = Int8Path.Scalar;
        return false;
    }

    static Int8Path Detect()
    {
        Int8Path[] fastestFirst =
            [Int8Path.Avx512Vnni, Int8Path.AvxVnni, Int8Path.Avx512Bw, Int8Path.Avx2, Int8Path.ArmDot];
        foreach (var path in fastestFirst)
            if (IsSupported(path)) return path;
        return Int8Path.Scalar;
    }

    /// <summary>The path an EDGEBERT_INT8 value names, or null when it is unset or blank; an unknown or unsupported
    /// name throws.</summary>
    internal static Int8Path? FromSetting(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (!TryParse(text.Trim(), out var path))
            throw new ArgumentException(
                $"EDGEBERT_INT8='{text}' is not one of avx512vnni, avxvnni, avx512bw, avx2, armdot, scalar");
        if (!IsSupported(path))
            throw new PlatformNotSupportedException(
                $"EDGEBERT_INT8='{text}' is not supported by this CPU (best: {Name(Detect())})");
        return path;
    }
}
