using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Tests;

public class FineTunerTests
{
    static FineTuneOptions Sst2Options(string outDir, int epochs) => new()
    {
        Task = GlueTask.Sst2,
        Data = SharedData.Glue("SST-2"),
        Init = "random:tiny",
        Vocab = ModelTestFiles.BertBaseVocab,
        OutputDirectory = outDir,
        Epochs = epochs,
        LearningRate = 2e-3f,
        BatchSize = 16,
        MaxLength = 48,
        MaxTrainExamples = 640,
        Threads = 2,
        Seed = 7,
    };

    /// <summary>A one-epoch SST-2 fine-tune of a random tiny model in <paramref name="dir"/>, loaded back.</summary>
    static BertCheckpoint FineTunedTiny(string dir)
    {
        new FineTuner(Sst2Options(dir, 1), TextWriter.Null).Run();
        return BertCheckpoint.Load(dir);
    }

    /// <summary>Saves <paramref name="model"/> with a 40x larger classifier: confident probabilities, where a short
    /// run leaves them near 50/50.</summary>
    static void SaveSharpened(BertCheckpoint model, string dir)
    {
        foreach (ref float w in model.Weights.ClassifierWeight!.Values.AsSpan()) w *= 40;
        model.Save(dir);
    }

    const int DistilledExamples = 64;

    /// <summary>A gate stage with --distill 1 in which nothing moves (rates 0, no dropout, regularizers off) and the
    /// gates at 1 leave the soft forward dense, so its one train loss is the distillation loss of the init model.
    /// </summary>
    static FineTuneOptions StillDistillation(string outDir, string init) => Sst2Options(outDir, 1) with
    {
        Init = init, Gates = GateTraining.TwoStage, Lambda = 0, Mu = 0, LearningRate = 0, GateLearningRate = 0,
        Dropout = 0, MaxTrainExamples = DistilledExamples, Distill = 1,
    };

    /// <summary>The first SST-2 training examples the still stage sees.</summary>
    static EncodedExample[] DistilledTrain(BertWordPieceTokenizer tokenizer) =>
        TaskData.Encode(GlueReader.Read(GlueTask.Sst2, SharedData.Glue("SST-2"), GlueSplit.Train)
            .Take(DistilledExamples).ToList(), tokenizer, 48);

    [Fact]
    public void ShortRunLowersTheLossAndSavesALoadableCheckpoint()
    {
        using var dir = new ModelTestFiles.TempDir();
        var tuner = new FineTuner(Sst2Options(dir.Path, 3), TextWriter.Null);
        tuner.Run();
        var losses = tuner.Reports.Select(r => r.TrainLoss).ToArray();
        Assert.True(losses[^1] < losses[0] - 0.05, $"train loss did not fall: {string.Join(", ", losses)}");

        var saved = BertCheckpoint.Load(dir.Path);
        Assert.Equal(["0", "1"], saved.Config.Labels);
        // Dev is encoded as `eval` encodes it (the model's length, not the training --max-len 48)...
        var dev = TaskData.Encode(GlueReader.Read(GlueTask.Sst2, SharedData.Glue("SST-2"), GlueSplit.Dev),
            saved.RequireTokenizer(), saved.MaxSequenceLength);
        Assert.True(saved.MaxSequenceLength > 48);
        var result = Evaluator.Evaluate(BertEngine.Load(saved), GlueTask.Sst2, dev, useGates: true,
            Kernels.WorkerPool.Single);
        // ...and the saved model is the best epoch's, so its dev accuracy is the best one reported.
        Assert.Equal(tuner.Reports.Max(r => r.Hard.MainMetric), result.MainMetric, 6);
    }

    [Fact]
    public void DistillationWithAFrozenStudentCostsTheTeachersEntropy()
    {
        using var teacherDir = new ModelTestFiles.TempDir();
        using var studentDir = new ModelTestFiles.TempDir();
        // Near 50/50, entropy and label cross-entropy are both about ln 2: a confident teacher tells them apart.
        SaveSharpened(FineTunedTiny(teacherDir.Path), teacherDir.Path);

        // The student is the teacher and does not move: with --distill 1 the loss is the cross-entropy of the
        // teacher's probabilities with themselves, their entropy; with labels it would be the task's cross-entropy.
        var student = new FineTuner(StillDistillation(studentDir.Path, teacherDir.Path), TextWriter.Null);
        student.Run();

        var teacher = BertCheckpoint.Load(teacherDir.Path);
        var train = DistilledTrain(teacher.RequireTokenizer());
        var results = BertEngine.Load(teacher)
            .Run(train.Select(e => e.Input).ToArray(), new RunOptions(UseGates: false));
        double entropy = results.Average(r =>
        {
            double max = r.Logits.Max(), logSum = Math.Log(r.Logits.Sum(z => Math.Exp(z - max)));
            return -r.Logits.Sum(z => Math.Exp(z - max - logSum) * (z - max - logSum));
        });
        double crossEntropy = results.Zip(train).Average(p =>
        {
            double max = p.First.Logits.Max(), logSum = Math.Log(p.First.Logits.Sum(z => Math.Exp(z - max)));
            return logSum - (p.First.Logits[p.Second.Label] - max);
        });
        double loss = student.Reports.Single().TrainLoss;
        Assert.True(Math.Abs(loss - entropy) <= 1e-4 * entropy, $"train loss {loss}, teacher entropy {entropy}");
        Assert.True(Math.Abs(crossEntropy - entropy) > 1e-2,
            $"labels and teacher agree too closely for this test to tell them apart: {crossEntropy} vs {entropy}");
    }

    [Fact]
    public void DistillationFromATeacherCostsTheCrossEntropyOfItsProbabilitiesWithTheStudents()
    {
        using var studentInit = new ModelTestFiles.TempDir();
        using var teacherDir = new ModelTestFiles.TempDir();
        using var output = new ModelTestFiles.TempDir();
        var init = FineTunedTiny(studentInit.Path);
        // The teacher: the same model with a sharper classifier, so its probabilities differ from the student's.
        SaveSharpened(init, teacherDir.Path);

        // Nothing moves: the loss is -sum_c p_teacher(c) log p_student(c), averaged.
        var student = new FineTuner(StillDistillation(output.Path, studentInit.Path) with { Teacher = teacherDir.Path },
            TextWriter.Null);
        student.Run();

        var inputs = DistilledTrain(init.RequireTokenizer()).Select(e => e.Input).ToArray();
        var dense = new RunOptions(UseGates: false);
        var teacher = BertEngine.Load(BertCheckpoint.Load(teacherDir.Path)).Run(inputs, dense);
        var studentLogits = BertEngine.Load(BertCheckpoint.Load(studentInit.Path)).Run(inputs, dense);
        static double[] LogSoftmax(float[] z)
        {
            double max = z.Max(), logSum = Math.Log(z.Sum(v => Math.Exp(v - max)));
            return [.. z.Select(v => v - max - logSum)];
        }
        double expected = teacher.Zip(studentLogits).Average(p =>
        {
            var (t, s) = (LogSoftmax(p.First.Logits), LogSoftmax(p.Second.Logits));
            return -t.Zip(s).Sum(q => Math.Exp(q.First) * q.Second);
        });
        double loss = student.Reports.Single().TrainLoss;
        Assert.True(Math.Abs(loss - expected) <= 1e-4 * expected, $"train loss {loss}, cross-entropy {expected}");

        var alone = Assert.Throws<ArgumentException>(() => new FineTuner(Sst2Options(output.Path, 1) with
            { Teacher = teacherDir.Path, Gates = GateTraining.TwoStage, Lambda = 0.1f }, TextWriter.Null).Run());
        Assert.Contains("--teacher goes with --distill", alone.Message);
    }

    [Fact]
    public void FrozenGatesTrainTheModelUnderTheHardKeptCounts()
    {
        using var initDir = new ModelTestFiles.TempDir();
        using var outDir = new ModelTestFiles.TempDir();
        // Undecided gates, not a prefix: layer 0 of the tiny shape's two has 20 gates >= 0.5 scattered over 48 ranks,
        // layer 1 has 30 (its kept count is forced down to 20).
        var gated = FineTunedTiny(initDir.Path);
        gated.Config.GatePositions = 48;
        int[] above = [20, 30];
        Assert.Equal(above.Length, gated.Weights.Layers.Length);
        var rng = new Random(3);
        for (int j = 0; j < gated.Weights.Layers.Length; j++)
        {
            var ranks = Enumerable.Range(0, 48).OrderBy(_ => rng.Next()).ToArray();
            var gate = new float[48];
            for (int i = 0; i < 48; i++)
                gate[ranks[i]] = i < above[j] ? 0.5f + 0.5f * (float)rng.NextDouble() : 0.49f * (float)rng.NextDouble();
            gated.Weights.Layers[j].Gate = new Param([48], gate);
        }
        gated.Save(initDir.Path);
        var before = gated.Weights.Layers[0].IntermediateWeight.Values.ToArray();

        var tuner = new FineTuner(Sst2Options(outDir.Path, 1) with { Init = initDir.Path, Gates = GateTraining.TwoStage,
            Lambda = 0.5f, FreezeGates = true }, TextWriter.Null);
        tuner.Run();

        var trained = BertCheckpoint.Load(outDir.Path);
        int[] kept = [20, 20];
        for (int j = 0; j < kept.Length; j++)
            Assert.Equal(Enumerable.Range(0, 48).Select(k => k < kept[j] ? 1f : 0f),
                trained.Weights.Layers[j].Gate!.Values);
        Assert.NotEqual(before, trained.Weights.Layers[0].IntermediateWeight.Values);
        // 0/1 gates: the soft training forward is the hard compacted one (METHOD.md point 8), so dev agrees.
        var report = tuner.Reports.Single();
        Assert.Equal(report.Hard.MainMetric, report.Soft!["accuracy"], 6);
        Assert.Equal(kept, report.KeptCounts);
    }

    [Fact]
    public void FreezingGatesNeedsAGatedModel()
    {
        using var dir = new ModelTestFiles.TempDir();
        var error = Assert.Throws<ArgumentException>(() => new FineTuner(Sst2Options(dir.Path, 1) with
            { Gates = GateTraining.TwoStage, Lambda = 0.1f, FreezeGates = true }, TextWriter.Null).Run());
        Assert.Contains("gated --init", error.Message);
    }

    [Fact]
    public void DistillationNeedsGatesAndAFineTunedTeacher()
    {
        using var dir = new ModelTestFiles.TempDir();
        var noGates = Assert.Throws<ArgumentException>(() =>
            new FineTuner(Sst2Options(dir.Path, 1) with { Distill = 0.5f }, TextWriter.Null).Run());
        Assert.Contains("--gates", noGates.Message);
        var randomTeacher = Assert.Throws<ArgumentException>(() => new FineTuner(Sst2Options(dir.Path, 1) with
            { Distill = 0.5f, Gates = GateTraining.OneStage, Lambda = 0.1f }, TextWriter.Null).Run());
        Assert.Contains("fine-tuned on SST-2", randomTeacher.Message);
    }

    [Fact]
    public void ResumeAfterAnInterruptionContinuesBitForBit()
    {
        using var straight = new ModelTestFiles.TempDir();
        using var interrupted = new ModelTestFiles.TempDir();
        new FineTuner(Sst2Options(straight.Path, 2), TextWriter.Null).Run();

        // Stop in the middle of the first epoch, as Ctrl+C would, then continue with Resume.
        using (var cancel = new CancellationTokenSource())
        {
            var first = new FineTuner(Sst2Options(interrupted.Path, 2), TextWriter.Null, p =>
            {
                if (p.Epoch == 0 && p.Batch == 7) cancel.Cancel();
            });
            first.Run(cancel.Token);
            Assert.Empty(first.Reports);
        }
        new FineTuner(Sst2Options(interrupted.Path, 2) with { Resume = true }, TextWriter.Null).Run();

        foreach (var folder in new[] { "", FineTuner.ResumeFolder })
        {
            var a = File.ReadAllBytes(Path.Combine(straight.Path, folder, "model.safetensors"));
            var b = File.ReadAllBytes(Path.Combine(interrupted.Path, folder, "model.safetensors"));
            Assert.True(a.AsSpan().SequenceEqual(b), $"{folder}/model.safetensors differs");
        }
    }
}

/// <summary>The synthetic task of issue 5: the label is decided by one marker token among random
/// filler tokens, so a gated model can drop almost every token and lose nothing.</summary>
public class GateLearningTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const int Fillers = 40;

    internal static (string Vocab, List<GlueExample> Train, List<GlueExample> Dev) MakeTask(string dir)
    {
        var words = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad" };
        words.AddRange(Enumerable.Range(0, Fillers).Select(i => $"w{i}"));
        string vocab = Path.Combine(dir, "vocab.txt");
        File.WriteAllLines(vocab, words);
        var rng = new Random(17);
        List<GlueExample> Make(int count) => Enumerable.Range(0, count).Select(i =>
        {
            int n = rng.Next(12, 24), marker = rng.Next(n);
            int label = rng.Next(2);
            var text = Enumerable.Range(0, n)
                .Select(p => p == marker ? (label == 1 ? "good" : "bad") : $"w{rng.Next(Fillers)}");
            return new GlueExample(string.Join(' ', text), null, label, float.NaN, i + 1);
        }).ToList();
        return (vocab, Make(1200), Make(300));
    }

    FineTuneOptions Options(string dir, GateTraining gates, float lambda)
    {
        var (vocab, train, dev) = MakeTask(dir);
        return new FineTuneOptions
        {
            Task = GlueTask.Sst2, TrainExamples = train, DevExamples = dev, Init = "random:tiny", Vocab = vocab,
            OutputDirectory = Path.Combine(dir, "out"), Epochs = 4, LearningRate = 2e-3f, BatchSize = 32,
            MaxLength = 32,
            Threads = 2, Seed = 3, Gates = gates, Lambda = lambda, GatePositions = 32, GateLearningRate = 5e-2f,
        };
    }

    [Fact]
    public void GatedModelDropsMostTokensAndKeepsAccuracy()
    {
        using var denseDir = new ModelTestFiles.TempDir();
        using var gatedDir = new ModelTestFiles.TempDir();
        var dense = new FineTuner(Options(denseDir.Path, GateTraining.None, 0), TextWriter.Null);
        dense.Run();
        var log = new StringWriter();
        var gated = new FineTuner(Options(gatedDir.Path, GateTraining.OneStage, 2f), log);
        gated.Run();

        output.WriteLine(log.ToString());
        double denseAccuracy = dense.Reports.Max(r => r.Hard.MainMetric);
        var last = gated.Reports[^1];
        Assert.True(denseAccuracy >= 0.95, $"dense accuracy {denseAccuracy}");
        Assert.True(last.Hard.MainMetric >= denseAccuracy - 0.02,
            $"gated {last.Hard.MainMetric} vs dense {denseAccuracy}");
        // The last layer must run on at most a quarter of the tokens ([CLS] and [SEP] included).
        double meanLength = MakeTask(gatedDir.Path).Dev.Average(e => e.TextA.Split(' ').Length + 2);
        Assert.True(last.Hard.MeanKeptPerLayer[^1] <= 0.25 * meanLength,
            $"last layer keeps {last.Hard.MeanKeptPerLayer[^1]:F1} tokens on average:\n{log}");
        Assert.True(last.Hard.FlopsRatio > 1.5, $"FLOPs ratio {last.Hard.FlopsRatio}");
    }
}
