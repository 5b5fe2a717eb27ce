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
        Assert.Equal(0, CliApp.Run(["export", "--model", ModelTestFiles.TinyBert, "--out", output, "--f16", "--labels",
            "neg,mid,pos"], stdout, new StringWriter()));

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
        Assert.Equal(2, CliApp.Run(["export", "--model", ModelTestFiles.TinyBert, "--out", dir.Path, "--labels", "a,b"],
            new StringWriter(), stderr));
        Assert.Contains("3 distinct names", stderr.ToString());
    }

    [Fact]
    public void RefusesToOverwriteItsInput()
    {
        var stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["export", "--model", ModelTestFiles.TinyBert, "--out", ModelTestFiles.TinyBert],
            new StringWriter(), stderr));
        Assert.StartsWith("error:", stderr.ToString());
    }
}

public class AverageVerbTests
{
    [Fact]
    public void AverageIsTheElementwiseMeanOfTheModels()
    {
        using var dir = new ModelTestFiles.TempDir();
        // Two perturbed copies of the fixture; their mean is computed here from the loaded tensors.
        string[] models = [Path.Combine(dir.Path, "a"), Path.Combine(dir.Path, "b"), Path.Combine(dir.Path, "c")];
        var rng = new Random(5);
        for (int m = 0; m < models.Length; m++)
        {
            var copy = BertCheckpoint.Load(ModelTestFiles.TinyBert);
            foreach (var (_, p) in copy.Weights.Named())
                for (int i = 0; i < p.Values.Length; i++) p.Values[i] += (float)(rng.NextDouble() - 0.5);
            copy.Save(models[m]);
        }
        string output = Path.Combine(dir.Path, "mean");
        Assert.Equal(0, CliApp.Run(["average", "--models", string.Join(',', models), "--out", output],
            new StringWriter(), new StringWriter()));

        var inputs = models.Select(BertCheckpoint.Load)
            .Select(c => c.Weights.Named().ToDictionary(t => t.Name, t => t.Param.Values)).ToArray();
        var mean = BertCheckpoint.Load(output);
        int tensors = 0;
        foreach (var (name, p) in mean.Weights.Named())
        {
            for (int i = 0; i < p.Values.Length; i++)
            {
                double expected = inputs.Average(t => (double)t[name][i]);
                Assert.True(Math.Abs(p.Values[i] - expected) <= 1e-6 * (1 + Math.Abs(expected)),
                    $"{name}[{i}]: {p.Values[i]} vs {expected}");
            }
            tensors++;
        }
        Assert.Equal(inputs[0].Count, tensors);
        Assert.NotNull(mean.Tokenizer);
    }

    [Fact]
    public void RefusesModelsOfDifferentConfigs()
    {
        using var dir = new ModelTestFiles.TempDir();
        var relabelled = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        relabelled.Config.Labels = ["x", "y", "z"];
        string other = Path.Combine(dir.Path, "other");
        relabelled.Save(other);
        var stderr = new StringWriter();
        Assert.NotEqual(0, CliApp.Run(["average", "--models", $"{ModelTestFiles.TinyBert},{other}", "--out",
            Path.Combine(dir.Path, "mean")], new StringWriter(), stderr));
        Assert.Contains("config.json differs", stderr.ToString());
    }

    [Fact]
    public void NeedsAtLeastTwoModels()
    {
        var stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["average", "--models", ModelTestFiles.TinyBert, "--out", "x"], new StringWriter(),
            stderr));
        Assert.Contains("at least two", stderr.ToString());
    }
}
