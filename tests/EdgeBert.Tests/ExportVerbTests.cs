using System.Text.Json.Nodes;
using EdgeBert.Cli;
using EdgeBert.Model;

namespace EdgeBert.Tests;

public class ExportVerbTests
{
    [Fact]
    public void F16ExportMatchesPyTorchOnHalfPrecisionWeights()
    {
        using var dir = new ModelTestFiles.TempDir();
        string output = Path.Combine(dir.Path, "f16");
        var stdout = new StringWriter();
        Assert.Equal(0, CliApp.Run(["export", "--model", ModelTestFiles.TinyBert, "--out", output, "--f16", "--labels", "neg,mid,pos"], stdout, new StringWriter()));

        var exported = BertCheckpoint.Load(output);
        Assert.Equal(["neg", "mid", "pos"], exported.Config.Labels);
        Assert.True(new FileInfo(Path.Combine(output, "model.safetensors")).Length
                    < 0.6 * new FileInfo(Path.Combine(ModelTestFiles.TinyBert, "model.safetensors")).Length);
        Assert.True(File.Exists(Path.Combine(output, "tokenizer_config.json")));
        var engine = BertEngine.Load(exported);
        // The fixture's *_f16 expectations: PyTorch's float64 forward on the F16-rounded weights.
        foreach (var node in ModelTestFiles.Expected()["cases"]!.AsArray().Take(6))
        {
            var ids = node!["input_ids"]!.AsArray().Select(x => (int)x!).ToArray();
            var types = node["token_type_ids"]?.AsArray().Select(x => (int)x!).ToArray();
            var expected = node["logits_f16"]!.AsArray().Select(x => (double)x!).ToArray();
            var logits = engine.Run([new SequenceInput(ids, types)])[0].Logits;
            Assert.True(KernelCheck.RelativeErrorNorm(logits, expected) <= 1e-4);
        }
    }

    [Fact]
    public void RejectsALabelListOfTheWrongLength()
    {
        using var dir = new ModelTestFiles.TempDir();
        var stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["export", "--model", ModelTestFiles.TinyBert, "--out", dir.Path, "--labels", "a,b"], new StringWriter(), stderr));
        Assert.Contains("3 distinct names", stderr.ToString());
    }

    [Fact]
    public void RefusesToOverwriteItsInput()
    {
        var stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["export", "--model", ModelTestFiles.TinyBert, "--out", ModelTestFiles.TinyBert], new StringWriter(), stderr));
        Assert.StartsWith("error:", stderr.ToString());
    }
}
