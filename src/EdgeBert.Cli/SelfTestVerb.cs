using System.Globalization;
using EdgeBert.Kernels;

namespace EdgeBert.Cli;

/// <summary>`edgebert selftest`: proves a deployed binary computes what the repository's tests prove,
/// without the repository: every kernel on every ISA path this CPU offers against its scalar reference,
/// the tokenizer (with accents, whatever the globalization mode) and the model forward against PyTorch.</summary>
static class SelfTestVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("selftest", "check every kernel on every ISA path, the tokenizer and a model forward",
            """
            edgebert selftest [--model DIR --expected FILE]
              Runs every kernel (GEMM in all transposes and packed, softmax, LayerNorm, GELU, tanh, attention,
              element-wise) on each ISA path this CPU supports against the scalar reference, then tokenizes
              the expected cases (also with accents added) and runs the model forward on every ISA path against
              the stored PyTorch logits. Without --model it uses the tiny fixture built into the binary; with it,
              FILE lists cases as tests/fixtures/tiny_bert_expected.json does (text, pair, input_ids, logits).
              Prints one line per check and "selftest: N passed, M failed"; exits 1 if any check failed.
            """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelDir = a.String("model");
        string? expectedFile = a.String("expected");
        a.RejectUnknown();
        if ((modelDir is null) != (expectedFile is null))
            throw new UsageException("--model and --expected go together");

        foreach (var key in new[] { "native aot", "isa best", "isa supported", "invariant globalization" })
            o.WriteLine($"{key}: {InfoVerb.Lines().First(l => l.Key == key).Value}");

        var report = new SelfTestReport(o);
        SelfTestKernels.Run(report);
        SelfTestModel.Run(report, modelDir, expectedFile);

        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"selftest: {report.Passed} passed, {report.Failed} failed"));
        foreach (var failure in report.Failures) o.WriteLine($"failed: {failure}");
        return report.Failed == 0 ? 0 : 1;
    }
}

/// <summary>Counts checks and prints one line for each.</summary>
sealed class SelfTestReport(TextWriter output)
{
    public int Passed { get; private set; }
    public int Failed => Failures.Count;
    public List<string> Failures { get; } = new();

    /// <summary>Passes when error is at most tolerance (a NaN error fails).</summary>
    public void Within(string name, double error, double tolerance) =>
        Record(name, error <= tolerance,
            string.Create(CultureInfo.InvariantCulture, $"error {error:E2} (tolerance {tolerance:E1})"));

    public void Record(string name, bool ok, string detail)
    {
        output.WriteLine($"{(ok ? "ok  " : "FAIL")} {name}: {detail}");
        if (ok) Passed++;
        else Failures.Add($"{name}: {detail}");
    }

    /// <summary>Runs a group of checks; an exception fails the group instead of ending the self-test.</summary>
    public void Guard(string name, Action checks)
    {
        try { checks(); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Record(name, false, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
