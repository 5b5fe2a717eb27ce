using System.Globalization;
using System.Text.Json.Nodes;
using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Tests;

/// <summary>The fine-tuning traps of issue 20: a gated --init must not hand its gates on silently, the task must
/// be recognised after a label rename, and wrong settings or data must fail in one line before any training.
/// </summary>
public sealed class FineTuningTrapsTests : IDisposable
{
    readonly ModelTestFiles.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static string Sst2 => SharedData.Glue("SST-2");

    /// <summary>`edgebert train` arguments for a short tiny run on SST-2.</summary>
    static string[] Train(string init, string output, params string[] more) =>
    [
        "train", "--task", "SST-2", "--data", Sst2, "--init", init, "--vocab", ModelTestFiles.BertBaseVocab,
        "--out", output, "--epochs", "1", "--lr", "2e-3", "--batch-size", "16", "--max-len", "16",
        "--max-train", "64", "--threads", "2", "--seed", "7", .. more,
    ];

    /// <summary>A one-epoch dense SST-2 fine-tune of a random tiny model.</summary>
    string DenseTiny()
    {
        string dir = _dir.File("dense");
        var (code, _, stderr) = CliRun.Run(Train("random:tiny", dir));
        Assert.True(code == 0, stderr);
        return dir;
    }

    /// <summary>The dense tiny model with 16-position gates (8 kept per layer) at threshold 0.4.</summary>
    string GatedTiny()
    {
        string dir = _dir.File("gated");
        var checkpoint = BertCheckpoint.Load(DenseTiny());
        checkpoint.Config.GatePositions = 16;
        checkpoint.Config.GateThreshold = 0.4f;
        foreach (var layer in checkpoint.Weights.Layers)
            layer.Gate = new Param([16], Enumerable.Range(0, 16).Select(k => k < 8 ? 1f : 0f).ToArray());
        checkpoint.Save(dir);
        return dir;
    }

    static JsonObject Config(string dir) =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;

    static void AssertOneLineError(int expectedCode, (int Code, string Out, string Err) run, string mention)
    {
        Assert.True(run.Code == expectedCode, $"exit {run.Code}: {run.Err}");
        Assert.StartsWith("error: ", run.Err);
        Assert.Single(run.Err.Trim().Split('\n'));
        Assert.Contains(mention, run.Err);
    }

    [Fact]
    public void PlainTrainFromAGatedInitWritesADenseModel()
    {
        string gated = GatedTiny(), output = _dir.File("out");
        var (code, stdout, stderr) = CliRun.Run(Train(gated, output));
        Assert.True(code == 0, stderr);
        Assert.Contains("has gates: dropped", stdout);
        Assert.False(BertCheckpoint.Load(output).Weights.HasGates);
        var config = Config(output);
        foreach (var key in new[] { "gate_positions", "gate_threshold", "gate_kept_counts" })
            Assert.False(config.ContainsKey(key), key);
    }

    [Fact]
    public void GatesAreTrainedOnOnlyWithKeepGatesAndNewGatesTakeGatePositions()
    {
        string gated = GatedTiny();
        // Fine-tuned on SST-2 already, so two-stage is the gate stage alone.
        string kept = _dir.File("kept");
        var run = CliRun.Run(Train(gated, kept, "--gates", "two-stage", "--lambda", "0", "--mu", "0",
            "--gate-lr", "0", "--keep-gates"));
        Assert.True(run.Code == 0, run.Err);
        var keptModel = BertCheckpoint.Load(kept);
        Assert.Equal(0.4f, keptModel.Config.GateThreshold);
        Assert.All(keptModel.Weights.Layers, l =>
            Assert.Equal(Enumerable.Range(0, 16).Select(k => k < 8 ? 1f : 0f), l.Gate!.Values));

        string fresh = _dir.File("fresh");
        run = CliRun.Run(Train(gated, fresh, "--gates", "two-stage", "--lambda", "0", "--mu", "0", "--gate-lr", "0",
            "--gate-positions", "24"));
        Assert.True(run.Code == 0, run.Err);
        var freshModel = BertCheckpoint.Load(fresh);
        Assert.Equal(24, freshModel.Config.GatePositions);
        Assert.Equal(TokenGateEvaluator.DefaultThreshold, freshModel.Config.GateThreshold);
        Assert.All(freshModel.Weights.Layers, l => Assert.Equal(Enumerable.Repeat(1f, 24), l.Gate!.Values));
    }

    [Fact]
    public void GateOptionsThatCannotBeHonouredFailBeforeTraining()
    {
        string gated = GatedTiny(), dense = _dir.File("dense"), output = _dir.File("out");
        // --max-len above new gates' positions: before the dense stage, not after it.
        AssertOneLineError(1, CliRun.Run(Train("random:tiny", output, "--gates", "two-stage", "--lambda", "0.1",
            "--gate-positions", "12")), "--max-len 16 exceeds the 12 gate positions");
        AssertOneLineError(1, CliRun.Run(Train(gated, output, "--gates", "two-stage", "--lambda", "0.1",
            "--keep-gates", "--gate-positions", "32")), "the kept gates of");
        AssertOneLineError(1, CliRun.Run(Train(gated, output, "--keep-gates")), "--keep-gates");
        AssertOneLineError(1, CliRun.Run(Train(dense, output, "--gates", "two-stage", "--lambda", "0.1",
            "--keep-gates")), "needs a gated --init");
        var keptTooShort = Train(gated, output, "--gates", "two-stage", "--lambda", "0.1", "--keep-gates");
        keptTooShort[Array.IndexOf(keptTooShort, "--max-len") + 1] = "32";
        AssertOneLineError(1, CliRun.Run(keptTooShort), "--max-len 32 exceeds the 16 gate positions");
        Assert.False(File.Exists(Path.Combine(output, "config.json")), "a refused run wrote a model");
        Assert.False(Directory.Exists(Path.Combine(output, FineTuner.ResumeFolder)), "a refused run trained");
    }

    [Fact]
    public void StripGatesExportsTheDenseModelOfAGatedOne()
    {
        string gated = GatedTiny(), output = _dir.File("stripped");
        var run = CliRun.Run("export", "--model", gated, "--out", output, "--strip-gates");
        Assert.True(run.Code == 0, run.Err);
        var stripped = BertCheckpoint.Load(output);
        Assert.False(stripped.Weights.HasGates);
        Assert.False(Config(output).ContainsKey("gate_positions"));
        var input = new SequenceInput(Enumerable.Range(1, 14).Select(i => 1000 + 37 * i).ToArray());
        var dense = BertEngine.Load(BertCheckpoint.Load(gated)).Run([input], new RunOptions(UseGates: false))[0];
        var fromStripped = BertEngine.Load(stripped).Run([input])[0];
        Assert.Equal(dense.Logits, fromStripped.Logits);
        Assert.Equal(fromStripped.DenseFlops, fromStripped.Flops);

        AssertOneLineError(1, CliRun.Run("export", "--model", output, "--out", _dir.File("again"), "--strip-gates"),
            "no gates to strip");
    }

    [Fact]
    public void TheTaskIsRecognisedAfterALabelRename()
    {
        string dense = DenseTiny(), renamed = _dir.File("renamed");
        Assert.Equal("SST-2", Config(dense)["finetuning_task"]!.GetValue<string>());
        var run = CliRun.Run("export", "--model", dense, "--out", renamed, "--labels", "negative,positive");
        Assert.True(run.Code == 0, run.Err);
        Assert.True(TaskData.IsFineTunedOn(BertCheckpoint.Load(renamed), GlueTask.Sst2));

        // Recognised: two-stage is the gate stage alone, --distill accepts it as the teacher, the names stay.
        string output = _dir.File("out");
        var tuner = new FineTuner(new FineTuneOptions
        {
            Task = GlueTask.Sst2, Data = Sst2, Init = renamed, OutputDirectory = output, Epochs = 1,
            BatchSize = 16, MaxLength = 16, MaxTrainExamples = 32, Threads = 2, Gates = GateTraining.TwoStage,
            Lambda = 0.1f, GatePositions = 16, Distill = 0.5f,
        }, TextWriter.Null);
        tuner.Run();
        Assert.All(tuner.Reports, r => Assert.True(r.Gated));
        Assert.Equal(["negative", "positive"], BertCheckpoint.Load(output).Config.Labels);
    }

    [Fact]
    public void TheShippedModelIsAnSst2ModelDespiteItsLabelNames()
    {
        var shipped = BertCheckpoint.Load(Path.Combine(ModelTestFiles.RepoRoot, "weights", "edgebert-mini-sst2"));
        Assert.Equal(["negative", "positive"], shipped.Config.Labels);
        Assert.True(TaskData.IsFineTunedOn(shipped, GlueTask.Sst2));
        Assert.Null(TaskData.LabelWarning(shipped.Config, GlueTask.Sst2));
    }

    [Fact]
    public void TheRecordedTaskDecidesOverMatchingLabels()
    {
        var checkpoint = BertCheckpoint.Load(DenseTiny());
        checkpoint.Config.FinetuningTask = "MRPC";
        Assert.False(TaskData.IsFineTunedOn(checkpoint, GlueTask.Sst2));
        Assert.True(TaskData.IsFineTunedOn(checkpoint, GlueTask.Mrpc));
        Assert.Contains("fine-tuned on MRPC", TaskData.LabelWarning(checkpoint.Config, GlueTask.Sst2));
        // A model without the key (written before it existed) is recognised by its labels.
        checkpoint.Config.FinetuningTask = null;
        Assert.True(TaskData.IsFineTunedOn(checkpoint, GlueTask.Sst2));
        Assert.Null(TaskData.LabelWarning(checkpoint.Config, GlueTask.Sst2));
        checkpoint.Config.Labels = ["neg", "pos"];
        Assert.False(TaskData.IsFineTunedOn(checkpoint, GlueTask.Sst2));
        Assert.Contains("are not SST-2's", TaskData.LabelWarning(checkpoint.Config, GlueTask.Sst2));
        Assert.Throws<InvalidDataException>(() => TaskData.LabelWarning(checkpoint.Config, GlueTask.Mnli));
    }

    [Fact]
    public void AMissingTrainFileIsAOneLineErrorBeforeTheModelLoads()
    {
        string data = _dir.File("data");
        Directory.CreateDirectory(data);
        File.Copy(Path.Combine(Sst2, "dev.tsv"), Path.Combine(data, "dev.tsv"));
        // --init names no model: the data check comes first.
        string missingInit = _dir.File("no-model");
        Directory.CreateDirectory(missingInit);
        foreach (var verb in new[] { "train", "sweep" })
        {
            string[] args = ["--task", "SST-2", "--data", data, "--init", missingInit, "--out", _dir.File("out")];
            var run = CliRun.Run([verb, .. args, .. verb == "sweep" ? new[] { "--lambdas", "0.1" } : []]);
            AssertOneLineError(1, run, Path.Combine(data, "train.tsv") + ": file not found");
        }
        Assert.False(Directory.Exists(_dir.File("out")));
    }

    [Fact]
    public void DataIsATaskDirectoryOrItsTrainFile()
    {
        var fromFile = new FineTuner(new FineTuneOptions
        {
            Task = GlueTask.Sst2, Data = Path.Combine(Sst2, "train.tsv"), Init = "random:tiny",
            Vocab = ModelTestFiles.BertBaseVocab, OutputDirectory = _dir.File("out"), Epochs = 1, MaxLength = 16,
            MaxTrainExamples = 16, Threads = 2,
        }, TextWriter.Null);
        Assert.Equal((Path.Combine(Sst2, "train.tsv"), Path.Combine(Sst2, "dev.tsv")),
            new FineTuneOptions { Task = GlueTask.Sst2, Data = Sst2, Init = "x", OutputDirectory = "y" }.DataFiles());
        fromFile.Run();
        Assert.Equal(872, fromFile.Reports.Single().Hard.Examples);
    }

    [Fact]
    public void LoggedDevNumbersAreTheNumbersOfEval()
    {
        string dense = _dir.File("dense");
        // --max-len 16 truncates most dev sentences in training; dev is still scored as eval scores it. Enough
        // examples that the model tells sentences apart, so truncation changes its answers.
        var args = Train("random:tiny", dense);
        args[Array.IndexOf(args, "--max-train") + 1] = "640";
        args[Array.IndexOf(args, "--epochs") + 1] = "3";
        var (code, stdout, stderr) = CliRun.Run(args);
        Assert.True(code == 0, stderr);
        // The best epoch is the one saved.
        string accuracy = stdout.Split('\n').Where(l => l.StartsWith("stage 1 epoch", StringComparison.Ordinal))
            .Select(l => l.Split("dev accuracy ")[1][..6]).Max()!;

        var eval = CliRun.Run("eval", "--model", dense, "--task", "SST-2", "--data", Sst2, "--json");
        Assert.True(eval.Code == 0, eval.Err);
        double evalAccuracy = JsonNode.Parse(eval.Out)!["metrics"]!["accuracy"]!.GetValue<double>();
        Assert.Equal(accuracy, evalAccuracy.ToString("F4", CultureInfo.InvariantCulture));

        // The property is not vacuous: scoring dev at the training length gives another number.
        var checkpoint = BertCheckpoint.Load(dense);
        var dev = TaskData.Encode(GlueReader.Read(GlueTask.Sst2, Sst2, GlueSplit.Dev), checkpoint.RequireTokenizer(),
            16);
        double atTrainingLength = Evaluator.Evaluate(BertEngine.Load(checkpoint), GlueTask.Sst2, dev, true,
            Kernels.WorkerPool.Single).MainMetric;
        Assert.NotEqual(evalAccuracy, atTrainingLength, 6);
    }

    [Fact]
    public void SweepTakesAGatedInitAndTrainsItsDenseBaselineWithoutGates()
    {
        string gated = GatedTiny(), output = _dir.File("sweep");
        string[] args = [.. Train(gated, output)[1..], "--lambdas", "0.5", "--timing-examples", "4"];
        var (code, stdout, stderr) = CliRun.Run(["sweep", .. args]);
        Assert.True(code == 0, stdout + stderr);
        Assert.False(BertCheckpoint.Load(Path.Combine(output, Sweep.DenseFolder)).Weights.HasGates);
        Assert.True(BertCheckpoint.Load(Path.Combine(output, "lambda-0.5")).Weights.HasGates);
        AssertOneLineError(1, CliRun.Run(["sweep", .. args, "--keep-gates"]), "--keep-gates");
    }
}
