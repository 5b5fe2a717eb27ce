using System.Text.Json.Nodes;
using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Tests;

/// <summary>A model is served at the gate threshold it was trained at: train stores it in config.json, and
/// eval (like every verb) reads it back instead of assuming 0.5.</summary>
public class GateThresholdTests
{
    [Fact]
    public void AModelTrainedAtAThresholdIsEvaluatedAtIt()
    {
        using var dir = new ModelTestFiles.TempDir();
        new FineTuner(new FineTuneOptions
        {
            Task = GlueTask.Sst2, Data = SharedData.Glue("SST-2"), Init = "random:tiny",
            Vocab = ModelTestFiles.BertBaseVocab, OutputDirectory = dir.Path, Epochs = 1, LearningRate = 2e-3f,
            BatchSize = 16, MaxLength = 32, MaxTrainExamples = 64, Threads = 2, Seed = 7,
            Gates = GateTraining.OneStage, Lambda = 0.1f, GatePositions = 32, GateThreshold = 0.3f,
        }, TextWriter.Null).Run();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        Assert.Equal(0.3, config["gate_threshold"]!.GetValue<double>(), 6);

        // Gates between the two thresholds make 0.3 and 0.5 keep different counts: 12 tokens against 6.
        var checkpoint = BertCheckpoint.Load(dir.Path);
        foreach (var layer in checkpoint.Weights.Layers)
        {
            var gate = layer.Gate!.Values;
            for (int k = 0; k < gate.Length; k++) gate[k] = k < 6 ? 1f : k < 12 ? 0.4f : 0.1f;
        }
        checkpoint.Save(dir.Path);
        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        Assert.Equal([12, 12], saved["gate_kept_counts"]!.AsArray().Select(n => n!.GetValue<int>()));

        string dev = Path.Combine(SharedData.Glue("SST-2"), "dev.tsv");
        var (code, stdout, stderr) = CliRun.Run("eval", "--model", dir.Path, "--task", "SST-2", "--data", dev,
            "--json");
        Assert.True(code == 0, stderr);
        var report = JsonNode.Parse(stdout)!;
        Assert.Equal(0.3, report["gate_threshold"]!.GetValue<double>(), 6);

        var reloaded = BertCheckpoint.Load(dir.Path);
        var examples = TaskData.Encode(GlueReader.Read(GlueTask.Sst2, dev), reloaded.RequireTokenizer(), 512);
        double Ratio(float threshold) =>
            Math.Round(Evaluator.Evaluate(BertEngine.Load(reloaded, new EngineOptions { GateThreshold = threshold }),
            GlueTask.Sst2, examples, useGates: true, Kernels.WorkerPool.Single).FlopsRatio, 4);
        Assert.Equal(Ratio(0.3f), report["flops_ratio"]!.GetValue<double>());
        Assert.NotEqual(Ratio(0.5f), report["flops_ratio"]!.GetValue<double>());
    }
}

public class EngineLoadTests
{
    [Fact]
    public void LoadingLeavesTheCheckpointAsItWasAndCanBeRepeated()
    {
        var checkpoint = BertCheckpoint.Load(EngineFixtures.TinyBertGated);
        var before = checkpoint.Weights.Named().Select(t => t.Param.Values.ToArray()).ToList();
        var first = BertEngine.Load(checkpoint);
        var second = BertEngine.Load(checkpoint, new EngineOptions { GateThreshold = 0.2f });
        var after = checkpoint.Weights.Named().Select(t => t.Param.Values).ToList();
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++) Assert.Equal(before[i], after[i]);
        Assert.Equal(0.5f, checkpoint.Config.GateThreshold);
        var input = new SequenceInput([2, 7, 9, 11, 3]);
        Assert.Equal(first.Run([input])[0].Logits, BertEngine.Load(checkpoint).Run([input])[0].Logits);
        Assert.Equal(0.2f, second.Gates!.Threshold);
    }
}
