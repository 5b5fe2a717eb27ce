using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>The vector width a kernel runs with. One C# source serves all of them:
/// Vector512 (AVX-512), Vector256 (AVX2 + FMA), Vector128 (SSE/NEON), and plain scalar code.</summary>
public enum Isa { Scalar, Vector128, Avx2, Avx512 }

/// <summary>Picks the best path the CPU supports; tests and benchmarks override it
/// (the <see cref="Active"/> setter, or EDGEBERT_ISA=avx512|avx2|vector128|scalar).</summary>
public static class IsaSelector
{
    public static Isa Best { get; } = Detect();

    static Isa _active = FromEnvironment() ?? Best;

    /// <summary>The path every dispatching kernel takes. Setting a path the CPU lacks throws.</summary>
    public static Isa Active
    {
        get => _active;
        set
        {
            if (!IsSupported(value))
                throw new PlatformNotSupportedException($"ISA path '{Name(value)}' is not supported by this CPU (best: {Name(Best)})");
            _active = value;
        }
    }

    /// <summary>Every path this CPU can run, fastest last.</summary>
    public static IReadOnlyList<Isa> Supported { get; } =
        Enum.GetValues<Isa>().Where(IsSupported).ToArray();

    public static bool IsSupported(Isa isa) => isa switch
    {
        Isa.Scalar => true,
        Isa.Vector128 => Vector128.IsHardwareAccelerated,
        Isa.Avx2 => Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx2.IsSupported,
        Isa.Avx512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        _ => false,
    };

    public static string Name(Isa isa) => isa switch
    {
        Isa.Scalar => "scalar",
        Isa.Vector128 => "vector128",
        Isa.Avx2 => "avx2",
        Isa.Avx512 => "avx512",
        _ => isa.ToString(),
    };

    public static bool TryParse(string text, out Isa isa)
    {
        foreach (var candidate in Enum.GetValues<Isa>())
            if (string.Equals(Name(candidate), text, StringComparison.OrdinalIgnoreCase)) { isa = candidate; return true; }
        isa = Isa.Scalar;
        return false;
    }

    static Isa Detect()
    {
        if (IsSupported(Isa.Avx512)) return Isa.Avx512;
        if (IsSupported(Isa.Avx2)) return Isa.Avx2;
        if (IsSupported(Isa.Vector128)) return Isa.Vector128;
        return Isa.Scalar;
    }

    static Isa? FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable("EDGEBERT_ISA");
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (!TryParse(text.Trim(), out var isa))
            throw new ArgumentException($"EDGEBERT_ISA='{text}' is not one of avx512, avx2, vector128, scalar");
        if (!IsSupported(isa))
            throw new PlatformNotSupportedException($"EDGEBERT_ISA='{text}' is not supported by this CPU (best: {Name(Detect())})");
        return isa;
    }
}
