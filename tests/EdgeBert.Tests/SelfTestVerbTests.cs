using System.Diagnostics;
using System.Text.Json.Nodes;
using EdgeBert.Cli;
using EdgeBert.Kernels;

namespace EdgeBert.Tests;

/// <summary>`edgebert info` and `edgebert selftest`.</summary>
public class SelfTestVerbTests
{

    [Fact]
    public void InfoPrintsTheIsaPathsOfThisCpu()
    {
        var (code, output, _) = CliRun.Run("info");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd()).ToList();
        Assert.Contains($"isa best: {IsaSelector.Name(IsaSelector.Best)}", lines);
        Assert.Contains(lines, l => l.StartsWith($"isa active: {IsaSelector.Name(IsaSelector.Default)}",
            StringComparison.Ordinal));
        Assert.Contains($"isa supported: {string.Join(", ", IsaSelector.Supported.Select(IsaSelector.Name))}", lines);
        Assert.Contains("native aot: no (JIT)", lines);
        // Only tools/publish-aot.sh embeds a model.
        Assert.Contains("embedded model: none", lines);
        foreach (var key in new[] { "version", "runtime", "os", "architecture", "vector512 accelerated",
            "vector256 accelerated",
                                    "vector128 accelerated", "cpu features", "cores", "invariant globalization" })
            Assert.Contains(lines, l => l.StartsWith(key + ": ", StringComparison.Ordinal));
    }

    [Fact]
    public void SelfTestPassesOnEveryIsaPathOfThisCpu()
    {
        var (code, output, stderr) = CliRun.Run("selftest");
        Assert.True(code == 0, output + stderr);
        Assert.Matches(@"(?m)^selftest: \d+ passed, 0 failed\r?$", output);
        Assert.DoesNotContain("FAIL", output);
        foreach (var isa in IsaSelector.Supported)
        {
            string name = IsaSelector.Name(isa);
            foreach (var kernel in new[] { "gemm nn", "gemm nt", "gemm tn", "gemm tt", "gemm packed", "softmax",
                "layernorm", "gelu", "tanh", "attention", "model forward" })
                Assert.Matches($@"(?m)^ok   {name} +{kernel}", output);
        }
        Assert.Contains("ok   tokenizer decomposed accents", output);
    }

    [Fact]
    public void SelfTestReadsAModelDirectoryAndCatchesWrongLogits()
    {
        string expectedPath = Path.Combine(ModelTestFiles.Fixtures, "tiny_bert_expected.json");
        var (code, output, _) = CliRun.Run("selftest", "--model", ModelTestFiles.TinyBert, "--expected", expectedPath);
        Assert.True(code == 0, output);
        Assert.Contains($"model forward {ModelTestFiles.TinyBert}", output);

        // A logit off by 1e-3 (far below what a person would notice, far above float error) must fail.
        var expected = ModelTestFiles.Expected();
        var logits = (JsonArray)expected["cases"]![0]!["logits"]!;
        logits[0] = (double)logits[0]! + 1e-3;
        using var dir = new ModelTestFiles.TempDir();
        File.WriteAllText(dir.File("expected.json"), expected.ToJsonString());
        (code, output, _) = CliRun.Run("selftest", "--model", ModelTestFiles.TinyBert, "--expected",
            dir.File("expected.json"));
        Assert.Equal(1, code);
        Assert.Matches(@"(?m)^selftest: \d+ passed, [1-9]\d* failed", output);
        Assert.Contains("failed: ", output);
        Assert.Contains(IsaSelector.Supported, isa => output.Contains($"FAIL {IsaSelector.Name(isa)}",
            StringComparison.Ordinal));
    }

    [Fact]
    public void SelfTestOptionsGoTogether()
    {
        Assert.Equal(2, CliRun.Run("selftest", "--model", ModelTestFiles.TinyBert).Code);
        Assert.Equal(2, CliRun.Run("info", "--verbose").Code);
    }

    /// <summary>Invariant globalization is read at start-up, so it needs a process of its own: the JIT build
    /// with the switch the NativeAOT build bakes in must still strip accents as HuggingFace does.</summary>
    [Fact]
    public async Task TokenizationUnderInvariantGlobalizationMatchesHuggingFace()
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "edgebert.dll");
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, "edgebert.runtimeconfig.json")),
            "edgebert.runtimeconfig.json next to the tests");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { cli, "selftest" }) start.ArgumentList.Add(arg);
        start.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
        using var process = Process.Start(start)!;
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        string output = await stdoutTask;
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, output + stderr);
        Assert.Contains("invariant globalization: on", output);
        Assert.Matches(@"ok   tokenizer precomposed accents .*\u00E9", output);
        Assert.Matches(@"(?m)^selftest: \d+ passed, 0 failed", output);
    }
}
