using System.Text.Json.Nodes;
using EdgeBert.Cli;

namespace EdgeBert.Tests;

/// <summary>One name and one default per flag across verbs, the shipped model as every model-taking verb's
/// default, --version, and eval's checks of the model against the task (issue 20, part 4).</summary>
public sealed class CliConsistencyTests : IDisposable
{
    readonly ModelTestFiles.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static string Shipped => Path.Combine(ModelTestFiles.RepoRoot, "weights", "edgebert-minilm-sst2");

    /// <summary>A task directory holding the first <paramref name="lines"/> examples of a GLUE dev file.</summary>
    string TaskDir(string task, int lines)
    {
        string dir = _dir.File(task);
        Directory.CreateDirectory(dir);
        File.WriteAllLines(Path.Combine(dir, "dev.tsv"),
            File.ReadLines(Path.Combine(SharedData.Glue(task), "dev.tsv")).Take(1 + lines));
        return dir;
    }

    [Theory]
    [InlineData("--version")]
    [InlineData("version")]
    public void VersionPrintsTheAssemblyVersion(string arg)
    {
        var (code, stdout, stderr) = CliRun.Run(arg);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Equal($"edgebert {CliApp.Version}\n", stdout);
        Assert.Matches(@"^\d+\.\d+\.\d+", CliApp.Version);
        Assert.Equal(2, CliRun.Run(arg, "extra").Code);
    }

    [Theory]
    [InlineData("tokenize", "--max-length", "8", "a text")]
    [InlineData("import", "--onnx", "m.onnx", "--vocab", "v.txt", "--out", "o", "--max-length", "8")]
    public void TheOldMaxLengthNameIsAUsageErrorNamingTheNewOne(params string[] args)
    {
        var (code, _, stderr) = CliRun.Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error: --max-length is now --max-len\n", stderr);
    }

    [Fact]
    public void TokenizeAndInferDefaultToTheShippedModel()
    {
        const string text = "a gripping, beautifully made film";
        var withModel = CliRun.Run("tokenize", "--model", Shipped, "--max-len", "6", text);
        var without = CliRun.Run("tokenize", "--max-len", "6", text);
        Assert.Equal(0, without.Code);
        Assert.Equal(withModel.Out, without.Out);
        Assert.Equal(6, JsonNode.Parse(without.Out)!["input_ids"]!.AsArray().Count);

        string input = _dir.File("in.jsonl"), output = _dir.File("out.jsonl");
        File.WriteAllText(input, "{\"text\": \"a gripping, beautifully made film\"}\n");
        var (code, _, stderr) = CliRun.Run("infer", "--input", input, "--output", output);
        Assert.True(code == 0, stderr);
        Assert.Equal("positive", JsonNode.Parse(File.ReadAllText(output))!["label"]!.GetValue<string>());
    }

    [Fact]
    public void EvalTakesATaskDirectoryOrAFileAndRunsOnEveryCoreByDefault()
    {
        string dir = TaskDir("SST-2", 12);
        var fromDir = CliRun.Run("eval", "--task", "SST-2", "--data", dir);
        var fromFile = CliRun.Run("eval", "--task", "SST-2", "--data", Path.Combine(dir, "dev.tsv"));
        Assert.True(fromDir.Code == 0, fromDir.Err);
        // stderr holds at most progress (on a loaded machine even 12 examples can take seconds).
        Assert.DoesNotContain("warning", fromDir.Err);
        Assert.Contains("SST-2: 12 examples", fromDir.Out);
        Assert.Equal(fromFile.Out.Split('\n')[..2], fromDir.Out.Split('\n')[..2]);
        Assert.Contains($"at {Environment.ProcessorCount} thread(s)", fromDir.Out);

        string empty = _dir.File("empty");
        Directory.CreateDirectory(empty);
        var missing = CliRun.Run("eval", "--task", "SST-2", "--data", empty);
        Assert.Equal(1, missing.Code);
        Assert.Equal($"error: {Path.Combine(empty, "dev.tsv")}: file not found\n", missing.Err);
    }

    [Fact]
    public void EvalRefusesAHeadOfAnotherSizeAndWarnsOfAnotherTask()
    {
        var wrongSize = CliRun.Run("eval", "--model", ModelTestFiles.TinyBert, "--task", "SST-2", "--data",
            TaskDir("SST-2", 4));
        Assert.Equal(1, wrongSize.Code);
        Assert.Equal("", wrongSize.Out);
        Assert.Single(wrongSize.Err.Trim().Split('\n'));
        Assert.StartsWith("error: the model has 3 label(s)", wrongSize.Err);

        // The shipped model is an SST-2 model (config.json finetuning_task): MRPC's two labels fit, the task does not.
        var otherTask = CliRun.Run("eval", "--task", "MRPC", "--data", TaskDir("MRPC", 4));
        Assert.True(otherTask.Code == 0, otherTask.Err);
        Assert.Equal("warning: the model is fine-tuned on SST-2 (config.json finetuning_task), not MRPC",
            otherTask.Err.Split('\n')[0]);
        Assert.Single(otherTask.Err.Split('\n'), l => l.StartsWith("warning", StringComparison.Ordinal));
        Assert.Contains("MRPC: 4 examples", otherTask.Out);
    }
}
