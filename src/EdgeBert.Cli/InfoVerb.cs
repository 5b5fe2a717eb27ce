using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
              isa active (EDGEBERT_ISA overrides it), isa supported, vector512/256/128 accelerated, cores,
              invariant globalization.
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
        yield return ("runtime", $"{RuntimeInformation.FrameworkDescription} ({RuntimeInformation.RuntimeIdentifier})");
        yield return ("os", RuntimeInformation.OSDescription);
        yield return ("architecture", $"{RuntimeInformation.ProcessArchitecture} process on {RuntimeInformation.OSArchitecture}");
        yield return ("native aot", IsNativeAot ? "yes (no JIT: SIMD widths fixed at publish time)" : "no (JIT)");
        yield return ("isa best", IsaSelector.Name(IsaSelector.Best));
        string? forced = Environment.GetEnvironmentVariable("EDGEBERT_ISA");
        yield return ("isa active", IsaSelector.Name(IsaSelector.Active) + (string.IsNullOrWhiteSpace(forced) ? "" : $" (EDGEBERT_ISA={forced})"));
        yield return ("isa supported", string.Join(", ", IsaSelector.Supported.Select(IsaSelector.Name)));
        yield return ("vector512 accelerated", YesNo(Vector512.IsHardwareAccelerated));
        yield return ("vector256 accelerated", YesNo(Vector256.IsHardwareAccelerated));
        yield return ("vector128 accelerated", YesNo(Vector128.IsHardwareAccelerated));
        yield return ("cores", Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return ("invariant globalization", InvariantGlobalization ? "on" : "off");
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

    static string Version()
    {
        var assembly = typeof(InfoVerb).Assembly;
        return assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
               ?? assembly.GetName().Version?.ToString() ?? "unknown";
    }

    static string YesNo(bool value) => value ? "yes" : "no";
}
