namespace EdgeBert.Cli;

/// <summary>`edgebert bench KIND`: quick side-by-side speed figures (BenchmarkDotNet lives in bench/).</summary>
static class BenchVerbs
{
    public static void Register(List<CliApp.Verb> verbs)
    {
        verbs.Add(new CliApp.Verb("bench", "time a kernel or the encoder (bench gemm | bench encoder)",
            "edgebert bench gemm --m M --k K --n N --threads T [--isa avx512|avx2|vector128|scalar] [--json]", Run));
    }

    static int Run(ParsedArgs a, TextWriter o)
    {
        if (a.Positionals.Count == 0) throw new UsageException("bench needs a kind: gemm");
        throw new UsageException($"unknown bench kind '{a.Positionals[0]}'");
    }
}
