using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>The vector width a kernel runs with. One C# source serves all of them:
/// Vector512 (AVX-512), Vector256 (AVX2 + FMA), Vector128 (SSE/NEON), and plain scalar code.</summary>
public enum Isa
{
    /// <summary>Plain loops; any CPU.</summary>
    Scalar,
    /// <summary>128-bit vectors: SSE on x64, NEON on ARM64.</summary>
    Vector128,
    /// <summary>256-bit vectors with FMA (x86-64-v3).</summary>
    Avx2,
    /// <summary>512-bit vectors (x86-64-v4).</summary>
    Avx512,
}

/// <summary>Picks the best path the CPU supports. A kernel takes its path as an argument; callers that pass
/// none get <see cref="Default"/> (EDGEBERT_ISA=avx512|avx2|vector128|scalar sets it for a whole process).
/// </summary>
public static class IsaSelector
{
    /// <summary>The widest path this CPU (and this binary) runs.</summary>
    public static Isa Best { get; } = Detect();

    /// <summary>The path of a kernel call that names none: EDGEBERT_ISA if set, else <see cref="Best"/>.</summary>
    public static Isa Default { get; } = FromEnvironment() ?? Best;

    /// <summary>Every path this CPU can run, fastest last.</summary>
    public static IReadOnlyList<Isa> Supported { get; } =
        Enum.GetValues<Isa>().Where(IsSupported).ToArray();

    /// <summary>Whether this CPU (and this binary) can run <paramref name="isa"/>.</summary>
    public static bool IsSupported(Isa isa) => isa switch
    {
        Isa.Scalar => true,
        Isa.Vector128 => Vector128.IsHardwareAccelerated,
        Isa.Avx2 => Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx2.IsSupported,
        Isa.Avx512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        _ => false,
    };

    /// <summary>The path's name as EDGEBERT_ISA takes it.</summary>
    public static string Name(Isa isa) => isa switch
    {
        Isa.Scalar => "scalar",
        Isa.Vector128 => "vector128",
        Isa.Avx2 => "avx2",
        Isa.Avx512 => "avx512",
        _ => isa.ToString(),
    };

    /// <summary>Reads a name as <see cref="Name"/> writes it.</summary>
    public static bool TryParse(string text, out Isa isa)
    {
        foreach (var candidate in Enum.GetValues<Isa>())
        {
            if (string.Equals(Name(candidate), text, StringComparison.OrdinalIgnoreCase))
            {
                isa = candidate;
                return true;
            }
        }
        isa = Isa.Scalar;
        return false;
    }

    /// <summary>The path a kernel runs for its optional argument: null means <see cref="Default"/>;
    /// a path the CPU lacks throws, so a test or benchmark never silently measures another one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Isa Resolve(Isa? isa)
    {
        if (isa is not { } path) return Default;
        if (!IsSupported(path)) ThrowUnsupported(path);
        return path;
    }

    // Out of line, so Resolve stays small enough to inline into every kernel call.
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    static void ThrowUnsupported(Isa isa) => throw new PlatformNotSupportedException(
        $"ISA path '{Name(isa)}' is not supported by this CPU (best: {Name(Best)})");

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
            throw new PlatformNotSupportedException(
                $"EDGEBERT_ISA='{text}' is not supported by this CPU (best: {Name(Detect())})");
        return isa;
    }
}
