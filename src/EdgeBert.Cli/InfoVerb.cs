using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using EdgeBert.Kernels;

namespace EdgeBert.Cli;

/// <summary>`edgebert info`: what this binary is and which SIMD path it runs, so a deployment can be
/// checked at a glance (a NativeAOT build without an instruction-set target runs Vector128 only).</summary>
static class InfoVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("info", "show version, runtime, CPU and the SIMD path in use",
            """
            edgebert info
              Prints one "key: value" line each: version, runtime, os, architecture, native aot, isa best,
              isa active (EDGEBERT_ISA overrides it), isa supported, int8 active (the INT8 products' kernel;
              EDGEBERT_INT8 overrides it), int8 supported, vector512/256/128 accelerated, cpu features
              (what the CPU reports, whatever the binary was compiled for), cores, invariant globalization,
              embedded model (the model tools/publish-aot.sh --model put inside the executable: name, size,
              the directory it came from; "none" without one).
            """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        a.RejectUnknown();
        foreach (var (key, value) in Lines()) o.WriteLine($"{key}: {value}");
        return 0;
    }

    public static IEnumerable<(string Key, string Value)> Lines()
    {
        yield return ("version", Version());
        yield return ("runtime",
            $"{RuntimeInformation.FrameworkDescription} ({RuntimeInformation.RuntimeIdentifier})");
        yield return ("os", RuntimeInformation.OSDescription);
        yield return ("architecture",
            $"{RuntimeInformation.ProcessArchitecture} process on {RuntimeInformation.OSArchitecture}");
        yield return ("native aot", IsNativeAot ? "yes (no JIT: SIMD widths fixed at publish time)" : "no (JIT)");
        yield return ("isa best", IsaSelector.Name(IsaSelector.Best));
        string? forced = Environment.GetEnvironmentVariable("EDGEBERT_ISA");
        string forcedNote = string.IsNullOrWhiteSpace(forced) ? "" : $" (EDGEBERT_ISA={forced})";
        yield return ("isa active", IsaSelector.Name(IsaSelector.Default) + forcedNote);
        yield return ("isa supported", string.Join(", ", IsaSelector.Supported.Select(IsaSelector.Name)));
        string? forcedInt8 = Environment.GetEnvironmentVariable("EDGEBERT_INT8");
        string int8Note = string.IsNullOrWhiteSpace(forcedInt8) ? "" : $" (EDGEBERT_INT8={forcedInt8})";
        yield return ("int8 active", Int8Paths.Name(Int8Paths.Default) + int8Note);
        yield return ("int8 supported", string.Join(", ", Int8Paths.Supported.Select(Int8Paths.Name)));
        yield return ("vector512 accelerated", YesNo(Vector512.IsHardwareAccelerated));
        yield return ("vector256 accelerated", YesNo(Vector256.IsHardwareAccelerated));
        yield return ("vector128 accelerated", YesNo(Vector128.IsHardwareAccelerated));
        yield return ("cpu features", CpuFeatures());
        if (IsNativeAot && CpuFeatures().Contains("avx512f") && IsaSelector.Best != Isa.Avx512)
            yield return ("note", "this CPU has AVX-512 but the binary was published without it: "
                + "publish with -p:EdgeBertCpu=x86-64-v4 (docs/deploy.md)");
        else if (IsNativeAot && CpuFeatures().Contains("avx2") && IsaSelector.Best < Isa.Avx2)
            yield return ("note", "this CPU has AVX2 but the binary was published without it: "
                + "publish with -p:EdgeBertCpu=x86-64-v3 (docs/deploy.md)");
        if (IsNativeAot && Int8Paths.Best == Int8Path.Scalar && CpuFeatures().Contains("avx2"))
            yield return ("note", "INT8 products run on the scalar path in this binary: "
                + "publish with -p:EdgeBertCpu=x86-64-v3 or x86-64-v4 (docs/deploy.md)");
        yield return ("cores", Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return ("invariant globalization", InvariantGlobalization ? "on" : "off");
        yield return ("embedded model", EmbeddedModel.Describe());
    }

    /// <summary>NativeAOT cannot emit code at run time; the JIT can.</summary>
    public static bool IsNativeAot => !RuntimeFeature.IsDynamicCodeSupported;

    /// <summary>The switch the InvariantGlobalization property writes into the runtime config (baked into an
    /// AOT binary); the environment variable overrides it at start-up.</summary>
    public static bool InvariantGlobalization
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT");
            if (env is not null) return env == "1" || env.Equals("true", StringComparison.OrdinalIgnoreCase);
            return AppContext.TryGetSwitch("System.Globalization.Invariant", out bool on) && on;
        }
    }

    /// <summary>What the CPU itself reports (CPUID on x86), whatever the binary was compiled for.</summary>
    static string CpuFeatures()
    {
        var features = new List<string>();
        if (X86Base.IsSupported)
        {
            int ecx1 = X86Base.CpuId(1, 0).Ecx;
            var (_, ebx7, ecx7, _) = X86Base.CpuId(7, 0);
            int eax7s1 = X86Base.CpuId(7, 1).Eax;
            if ((ecx1 & (1 << 12)) != 0) features.Add("fma");
            if ((ebx7 & (1 << 5)) != 0) features.Add("avx2");
            if ((ebx7 & (1 << 16)) != 0) features.Add("avx512f");
            if ((ebx7 & (1 << 30)) != 0) features.Add("avx512bw");
            if ((ecx7 & (1 << 11)) != 0) features.Add("avx512_vnni");
            if ((eax7s1 & (1 << 4)) != 0) features.Add("avx_vnni");
        }
        if (AdvSimd.IsSupported) features.Add("advsimd");
        if (Dp.IsSupported) features.Add("dotprod");
        return features.Count == 0 ? "none reported" : string.Join(" ", features);
    }

    static string Version()
    {
        var assembly = typeof(InfoVerb).Assembly;
        return assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
               ?? assembly.GetName().Version?.ToString() ?? "unknown";
    }

    static string YesNo(bool value) => value ? "yes" : "no";
}
