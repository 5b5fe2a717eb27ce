using System.Diagnostics;
using System.Globalization;
using EdgeBert.Autograd;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Training;

public enum GateTraining { None, OneStage, TwoStage }

/// <summary>Everything `edgebert train` takes. Defaults follow BERT fine-tuning practice.</summary>
public sealed record FineTuneOptions
{
    public required GlueTask Task { get; init; }
    /// <summary>The task's directory (train.tsv, dev.tsv) or its train file (the dev file beside it), unless the
    /// examples are given directly.</summary>
    public string? Data { get; init; }
    public IReadOnlyList<GlueExample>? TrainExamples { get; init; }
    public IReadOnlyList<GlueExample>? DevExamples { get; init; }
    /// <summary>A model directory, or "random:tiny|mini|small|base" with <see cref="Vocab"/>.</summary>
    public required string Init { get; init; }
    public string? Vocab { get; init; }
    public required string OutputDirectory { get; init; }
    public int Epochs { get; init; } = 3;
    public float LearningRate { get; init; } = 5e-5f;
    public int BatchSize { get; init; } = 32;
    public int MaxLength { get; init; } = 128;
    public double WarmupFraction { get; init; } = 0.1;
    public int Seed { get; init; } = 42;
    /// <summary>Seeds the weights this run creates (a new classifier, a random model); null: <see cref="Seed"/>.
    /// Fixing it while varying Seed gives runs that differ only in data order and dropout,
    /// which can be averaged.</summary>
    public int? InitSeed { get; init; }
    public int Threads { get; init; } = 1;
    public bool Resume { get; init; }
    public float WeightDecay { get; init; } = 0.01f;
    public float MaxGradientNorm { get; init; } = 1f;
    public float Dropout { get; init; } = 0.1f;
    /// <summary>Also save the resume state every this many steps (0: at the end of each epoch only).</summary>
    public int SaveEverySteps { get; init; }
    public int? MaxTrainExamples { get; init; }

    public GateTraining Gates { get; init; }
    public float Lambda { get; init; }
    /// <summary>Weight of the bi-modal regularizer; METHOD.md's default is mu = lambda.</summary>
    public float? Mu { get; init; }
    public float GateLearningRate { get; init; } = 1e-2f;
    public int? GatePositions { get; init; }
    /// <summary>Train on from the --init model's gates; otherwise a gated --init loses them, so a plain fine-tune
    /// is dense and a gated one learns new gates.</summary>
    public bool KeepGates { get; init; }
    /// <summary>The gates' keep threshold, stored in the written config.json; null keeps the threshold of the
    /// --init model's kept gates (<see cref="KeepGates"/>), else 0.5.</summary>
    public float? GateThreshold { get; init; }
    /// <summary>Knowledge distillation in the gate stage: the targets become (1 - Distill) x labels + Distill x the
    /// probabilities of the teacher run densely (<see cref="Teacher"/>, else the --init model; it must be
    /// fine-tuned on the task). 0: labels only.</summary>
    public float Distill { get; init; }
    /// <summary>The model directory of the --distill teacher, e.g. the dense parent of a gated --init; null: the
    /// --init model.</summary>
    public string? Teacher { get; init; }
    /// <summary>Set the --init model's gates to its hard kept counts (1 for ranks below m_j, else 0) and keep
    /// them fixed while the model trains, so training sees exactly the tokens inference keeps (PoWER-BERT's
    /// re-training step; METHOD.md point 8 makes the soft pass with 0/1 gates equal the hard one).</summary>
    public bool FreezeGates { get; init; }

    /// <summary>The options that decide what a run computes, by their `train` flag names, for
    /// <see cref="RunFiles.CheckSettings"/>. Paths, --threads and --save-every are left out: a moved data folder
    /// or another thread count continues the same run.</summary>
    public IReadOnlyDictionary<string, string> ResumeSettings()
    {
        var inv = CultureInfo.InvariantCulture;
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["task"] = Task.Name, ["epochs"] = Epochs.ToString(inv), ["lr"] = LearningRate.ToString("R", inv),
            ["batch-size"] = BatchSize.ToString(inv), ["max-len"] = MaxLength.ToString(inv),
            ["warmup"] = WarmupFraction.ToString("R", inv), ["seed"] = Seed.ToString(inv),
            ["init-seed"] = InitSeed?.ToString(inv) ?? "unset",
            ["weight-decay"] = WeightDecay.ToString("R", inv), ["max-grad-norm"] = MaxGradientNorm.ToString("R", inv),
            ["dropout"] = Dropout.ToString("R", inv), ["max-train"] = MaxTrainExamples?.ToString(inv) ?? "all",
            ["gates"] = Gates.ToString(), ["lambda"] = Lambda.ToString("R", inv),
            ["mu"] = Mu?.ToString("R", inv) ?? "lambda", ["gate-lr"] = GateLearningRate.ToString("R", inv),
            ["gate-positions"] = GatePositions?.ToString(inv) ?? "unset",
            ["gate-threshold"] = GateThreshold?.ToString("R", inv) ?? "unset",
            ["distill"] = Distill.ToString("R", inv), ["freeze-gates"] = FreezeGates ? "yes" : "no",
        };
        // Only when given, so resume states saved before the flag existed still match.
        if (KeepGates) settings["keep-gates"] = "yes";
        if (Teacher is not null) settings["teacher"] = Teacher;
        return settings;
    }

    /// <summary>The train and dev files <see cref="Data"/> names, checked to exist, so a wrong --data fails
    /// before anything is loaded.</summary>
    public (string Train, string Dev) DataFiles()
    {
        string data = Data ?? throw new ArgumentException("no --data given");
        bool file = File.Exists(data);
        if (!file && !Directory.Exists(data))
            throw new FileNotFoundException($"{data}: no such task directory or file");
        var files = file ? (data, Task.FilePath(Path.GetDirectoryName(Path.GetFullPath(data))!, GlueSplit.Dev))
            : (Task.FilePath(data, GlueSplit.Train), Task.FilePath(data, GlueSplit.Dev));
        foreach (var path in new[] { files.Item1, files.Item2 })
            if (!File.Exists(path))
                throw new FileNotFoundException($"{path}: file not found (--data is the {Task.Name} directory "
                    + $"holding {Task.TrainFileName} and {Task.DevFileName}, or a train file with "
                    + $"{Task.DevFileName} beside it)");
        return files;
    }
}

/// <summary>One line of the per-epoch log.</summary>
public sealed record EpochReport(int Stage, bool Gated, int Epoch, double TrainLoss, EvalResult Hard,
    IReadOnlyDictionary<string, double>? Soft, double MeanGate, double UndecidedShare, int[]? KeptCounts, bool Saved);

public sealed record TrainingProgress(int Stage, int Epoch, int Epochs, int Batch, int Batches, double Loss,
    double ExamplesPerSecond);

/// <summary>Fine-tunes BERT on a GLUE task, optionally learning token gates (METHOD.md): dense, one-stage
/// (task head, model and gates together) or two-stage (dense fine-tune, then gates). Saves the best
/// checkpoint in the HF layout and a resume state (weights, AdamW moments, step, RNG) that continues
/// bit for bit.</summary>
public sealed class FineTuner(FineTuneOptions options, TextWriter log, Action<TrainingProgress>? progress = null)
{
    public const string ResumeFolder = "resume";
    const string StateFile = "trainer_state.bin";

    readonly FineTuneOptions _o = options;

    public List<EpochReport> Reports { get; } = [];

    public sealed record Stage(bool Gated, int Epochs);

    public void Run(CancellationToken cancel = default)
    {
        var task = _o.Task;
        ValidateOptions();
        var files = _o.TrainExamples is null || _o.DevExamples is null ? _o.DataFiles() : default;
        string resumeDir = Path.Combine(_o.OutputDirectory, ResumeFolder);
        if (_o.Resume && RunFiles.RecoverDirectory(resumeDir) is { } recovered) log.WriteLine(recovered);
        bool resuming = _o.Resume && File.Exists(Path.Combine(resumeDir, StateFile));
        if (_o.Resume && !resuming) log.WriteLine($"no resume state in {resumeDir}: starting from --init");
        // Read and checked before anything is loaded, so a refused resume fails at once.
        var state = resuming ? TrainerState.Read(Path.Combine(resumeDir, StateFile)) : new TrainerState();
        if (resuming) RunFiles.CheckSettings(resumeDir, state.Settings, _o.ResumeSettings());

        var checkpoint = resuming ? BertCheckpoint.Load(resumeDir) : LoadInit();
        var config = checkpoint.Config;
        var weights = checkpoint.Weights;
        var tokenizer = checkpoint.RequireTokenizer();
        bool fineTuned = !resuming && TaskData.IsFineTunedOn(checkpoint, task);
        if (!resuming) PrepareGates(checkpoint);
        if (!resuming) PrepareHead(checkpoint);
        if (_o.Gates != GateTraining.None) config.GateThreshold = _o.GateThreshold ?? config.GateThreshold;
        if (_o.FreezeGates && !resuming) BinarizeGates(config, weights);
        int maxLength = Math.Min(_o.MaxLength, checkpoint.MaxSequenceLength);
        var stages = Stages(fineTuned);
        int gatePositions = weights.HasGates ? config.GatePositions : _o.GatePositions ?? config.GatePositions;
        // The training pass ranks every token of a sequence, so each rank needs a gate; checked before any epoch.
        if (stages.Any(s => s.Gated) && maxLength > gatePositions)
            throw new ArgumentException($"--max-len {maxLength} exceeds the {gatePositions} gate positions: "
                + (!weights.HasGates ? $"give --gate-positions {maxLength} or --max-len {gatePositions}"
                    : $"give --max-len {gatePositions}" + (_o.KeepGates ? " or leave out --keep-gates" : "")));

        var train = Encode(_o.TrainExamples ?? GlueReader.Read(task, files.Train), tokenizer, maxLength,
            _o.MaxTrainExamples);
        // Dev metrics are computed as `eval` computes them (texts truncated to the model's length), so the logged
        // numbers are eval's; the soft metric of a gate stage runs the training pass, at the training length.
        var devExamples = _o.DevExamples ?? GlueReader.Read(task, files.Dev);
        var dev = Encode(devExamples, tokenizer, checkpoint.MaxSequenceLength, null);
        var devSoft = checkpoint.MaxSequenceLength == maxLength ? dev : Encode(devExamples, tokenizer, maxLength, null);
        log.WriteLine($"{task.Name}: {train.Length} training and {dev.Length} dev examples, max length {maxLength} "
            + $"(dev: {checkpoint.MaxSequenceLength}, as eval)");

        var teacher = _o.Distill > 0 ? LoadTeacher(tokenizer) : null;
        using var pool = new WorkerPool(_o.Threads);
        for (int s = state.Stage; s < stages.Count; s++)
        {
            var stage = stages[s];
            if (stage.Gated && !weights.HasGates) AddGates(config, weights, gatePositions);
            if (s != state.Stage) state = new TrainerState { Stage = s };
            if (!RunStage(stage, s, config, checkpoint, train, dev, devSoft, state, pool, teacher, cancel)) return;
        }
        log.WriteLine($"done: best checkpoint in {_o.OutputDirectory}");
    }

    void ValidateOptions()
    {
        if (_o.Epochs < 1) throw new ArgumentException("--epochs must be at least 1");
        if (_o.BatchSize < 1) throw new ArgumentException("--batch-size must be at least 1");
        if (_o.MaxLength < 2) throw new ArgumentException("--max-len must be at least 2");
        if (_o.Gates != GateTraining.None && _o.Lambda < 0) throw new ArgumentException("--lambda must be >= 0");
        if (_o.Distill is < 0 or > 1) throw new ArgumentException("--distill must be in [0, 1]");
        if (_o.Distill > 0 && _o.Gates == GateTraining.None)
            throw new ArgumentException("--distill applies to gate training: give --gates");
        if (_o.Teacher is not null && _o.Distill == 0) throw new ArgumentException("--teacher goes with --distill");
        if (_o.FreezeGates && _o.Gates != GateTraining.TwoStage)
            throw new ArgumentException("--freeze-gates trains a gated --init model further: give --gates two-stage");
        if (_o.KeepGates && _o.Gates == GateTraining.None)
            throw new ArgumentException("--keep-gates trains the --init model's gates further: give --gates "
                + "(without --gates the fine-tune is dense)");
    }

    /// <summary>A gated --init keeps its gates only when asked (--keep-gates, or --freeze-gates, which fixes
    /// them); otherwise they are dropped, so nothing of another task's token selection is inherited silently.
    /// </summary>
    void PrepareGates(BertCheckpoint checkpoint)
    {
        bool keep = _o.KeepGates || _o.FreezeGates;
        if (!checkpoint.Weights.HasGates)
        {
            if (_o.KeepGates)
                throw new ArgumentException($"--keep-gates needs a gated --init model; {_o.Init} has no gates");
            return;
        }
        if (keep)
        {
            if (_o.GatePositions is { } n && n != checkpoint.Config.GatePositions)
                throw new ArgumentException($"--gate-positions {n}: the kept gates of {_o.Init} have "
                    + $"{checkpoint.Config.GatePositions} positions (leave out --keep-gates to learn new gates)");
            return;
        }
        checkpoint.StripGates();
        log.WriteLine(_o.Gates == GateTraining.None
            ? $"{_o.Init} has gates: dropped, the fine-tune is dense (--gates --keep-gates trains them on)"
            : $"{_o.Init} has gates: dropped, new gates are learned (--keep-gates trains the old ones on)");
    }

    /// <summary>Gates become the hard model's: 1 for the first m_j ranks of layer j, 0 after.</summary>
    void BinarizeGates(BertConfig config, BertWeights weights)
    {
        if (!weights.HasGates)
            throw new ArgumentException($"--freeze-gates needs a gated --init model; {_o.Init} has no gates");
        var kept = TokenGateEvaluator.ComputeKeptCounts(weights.Layers.Select(l => l.Gate!.Values).ToArray(),
            config.GateThreshold);
        for (int j = 0; j < weights.Layers.Length; j++)
        {
            var gate = weights.Layers[j].Gate!.Values;
            for (int k = 0; k < gate.Length; k++) gate[k] = k < kept[j] ? 1f : 0f;
        }
        log.WriteLine($"gates frozen at the kept counts m_j [{string.Join(", ", kept)}]");
    }

    /// <summary>The dense teacher of --distill and the workspace its forward passes reuse step after step.</summary>
    sealed record Teacher(BertEngine Engine, InferenceWorkspace Workspace);

    /// <summary>The --teacher model, else the --init model; it must already classify the task.</summary>
    Teacher LoadTeacher(BertWordPieceTokenizer studentTokenizer)
    {
        string source = _o.Teacher ?? _o.Init;
        string why = $"--distill needs {(_o.Teacher is null ? "--init" : "--teacher")} to be a model fine-tuned on "
            + $"{_o.Task.Name} (it is the dense teacher)";
        if (_o.Task.IsRegression) throw new ArgumentException("--distill is for classification tasks");
        if (source.StartsWith("random:", StringComparison.Ordinal)) throw new ArgumentException(why);
        var teacher = BertCheckpoint.Load(source);
        if (!TaskData.IsFineTunedOn(teacher, _o.Task)) throw new ArgumentException(why);
        // The teacher reads the student's token ids: another vocabulary would give it other words.
        if (teacher.Tokenizer is { } t && !t.Tokens.SequenceEqual(studentTokenizer.Tokens))
            throw new ArgumentException($"--teacher {source} has another vocabulary than the model it teaches");
        return new Teacher(new BertEngine(teacher.Config, teacher.Weights), new InferenceWorkspace());
    }

    /// <summary>(1 - Distill) x one-hot(label) + Distill x softmax(teacher logits), row by row.</summary>
    float[] DistillTargets(Teacher teacher, SequenceInput[] inputs, int[] labels, WorkerPool pool)
    {
        var results = teacher.Engine.Run(inputs, teacher.Workspace, new RunOptions(UseGates: false), pool);
        int classes = results[0].Logits.Length;
        var targets = new float[inputs.Length * classes];
        for (int b = 0; b < inputs.Length; b++)
        {
            var row = targets.AsSpan(b * classes, classes);
            results[b].Logits.CopyTo(row);
            Softmax.Rows(row, 1, classes);
            for (int c = 0; c < classes; c++) row[c] = _o.Distill * row[c] + (c == labels[b] ? 1 - _o.Distill : 0);
        }
        return targets;
    }

    BertCheckpoint LoadInit()
    {
        if (!_o.Init.StartsWith("random:", StringComparison.Ordinal)) return BertCheckpoint.Load(_o.Init);
        string shape = _o.Init["random:".Length..];
        var vocabPath = _o.Vocab ?? throw new ArgumentException("--init random:SHAPE needs --vocab FILE");
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"{vocabPath}: file not found");
        var tokenizer = BertWordPieceTokenizer.Load(vocabPath);
        var config = shape == "small"
            ? new BertConfig { HiddenSize = 512, NumHiddenLayers = 4, NumAttentionHeads = 8, IntermediateSize = 2048 }
            : BertConfig.ForShape(shape);
        config.VocabSize = tokenizer.VocabSize;
        config.MaxPositionEmbeddings = Math.Max(_o.MaxLength, 128);
        TaskData.ApplyTask(config, _o.Task);
        var weights = WeightInit.Random(config, _o.InitSeed ?? _o.Seed);
        return new BertCheckpoint(config, weights, tokenizer, Path.GetDirectoryName(Path.GetFullPath(vocabPath)));
    }

    /// <summary>A classifier for the task's labels, freshly initialised unless the
    /// checkpoint already has one (whose label names it keeps).</summary>
    void PrepareHead(BertCheckpoint checkpoint)
    {
        if (TaskData.IsFineTunedOn(checkpoint, _o.Task))
        {
            checkpoint.Config.FinetuningTask = _o.Task.Name;
            return;
        }
        var (config, weights) = (checkpoint.Config, checkpoint.Weights);
        TaskData.ApplyTask(config, _o.Task);
        var fresh = WeightInit.Random(config, (_o.InitSeed ?? _o.Seed) + 1);
        weights.PoolerWeight ??= fresh.PoolerWeight;
        weights.PoolerBias ??= fresh.PoolerBias;
        weights.ClassifierWeight = fresh.ClassifierWeight;
        weights.ClassifierBias = fresh.ClassifierBias;
        log.WriteLine($"new classifier for {_o.Task.Name}: labels "
            + string.Join(", ", TaskData.TaskLabels(_o.Task)));
    }

    static void AddGates(BertConfig config, BertWeights weights, int positions)
    {
        config.GatePositions = positions;
        foreach (var layer in weights.Layers)
            layer.Gate = new Param([config.GatePositions], Enumerable.Repeat(1f, config.GatePositions).ToArray());
    }

    IReadOnlyList<Stage> Stages(bool fineTuned) => _o.Gates switch
    {
        GateTraining.None => [new Stage(false, _o.Epochs)],
        GateTraining.OneStage => [new Stage(true, _o.Epochs)],
        _ when fineTuned => [new Stage(true, _o.Epochs)],
        _ => [new Stage(false, _o.Epochs), new Stage(true, _o.Epochs)],
    };

    static EncodedExample[] Encode(IReadOnlyList<GlueExample> examples, BertWordPieceTokenizer tokenizer, int maxLength,
        int? limit)
    {
        var list = limit is { } n && n < examples.Count ? examples.Take(n).ToList() : examples;
        return TaskData.Encode(list, tokenizer, maxLength);
    }

    /// <summary>Returns false when cancelled (after saving the resume state).</summary>
    bool RunStage(Stage stage, int stageIndex, BertConfig config, BertCheckpoint checkpoint, EncodedExample[] train,
        EncodedExample[] dev, EncodedExample[] devSoft, TrainerState state, WorkerPool pool, Teacher? teacher,
        CancellationToken cancel)
    {
        var weights = checkpoint.Weights;
        var graph = new BertTrainingGraph(config, weights);
        bool learnGates = stage.Gated && !_o.FreezeGates;
        var optimizer = new AdamW(ParameterGroups(graph, learnGates));
        if (state.Moments is not null) optimizer.ImportState(state.Moments);
        int batches = (train.Length + _o.BatchSize - 1) / _o.BatchSize;
        var schedule = LinearWarmupDecay.FromFraction(_o.WarmupFraction, (long)batches * stage.Epochs);
        var rng = new Rng(state.RngState ?? (ulong)(_o.Seed * 7919L + stageIndex + 1));
        float lambda = learnGates ? _o.Lambda : 0, mu = learnGates ? _o.Mu ?? _o.Lambda : 0;
        log.WriteLine(stage.Gated && !learnGates
            ? $"stage {stageIndex + 1}: training under frozen gates, {stage.Epochs} epochs"
            : stage.Gated
            ? string.Create(CultureInfo.InvariantCulture,
                $"stage {stageIndex + 1}: gate training, lambda {lambda}, mu {mu}, gate lr {_o.GateLearningRate}, "
                + $"{stage.Epochs} epochs")
              + (teacher is null ? "" : string.Create(CultureInfo.InvariantCulture,
                  $", distilling the dense {(_o.Teacher is null ? "--init" : "--teacher")} model with weight "
                  + $"{_o.Distill}"))
            : $"stage {stageIndex + 1}: dense fine-tuning, {stage.Epochs} epochs");

        var arena = new TensorArena();
        for (int epoch = state.Epoch; epoch < stage.Epochs; epoch++)
        {
            var order = RunFiles.Permutation(train.Length,
                (ulong)_o.Seed * 1_000_003UL + (ulong)stageIndex * 10_007UL + (ulong)epoch + 1);
            var clock = Stopwatch.StartNew();
            int examplesSeen = 0;
            for (int b = state.Batch; b < batches; b++)
            {
                int start = b * _o.BatchSize, count = Math.Min(_o.BatchSize, train.Length - start);
                var inputs = new SequenceInput[count];
                var labels = new int[count];
                var scores = new float[count];
                for (int i = 0; i < count; i++)
                {
                    var e = train[order[start + i]];
                    inputs[i] = e.Input; labels[i] = e.Label; scores[i] = e.Score;
                }
                var tape = new Tape(pool, arena);
                var forward = graph.Forward(tape, inputs, new TrainingForwardOptions
                    { Training = true, DropoutProbability = _o.Dropout, Rng = rng, UseGates = stage.Gated });
                var targets = stage.Gated && teacher is not null ? DistillTargets(teacher, inputs, labels, pool) : null;
                var loss = graph.Loss(tape, forward.Output, labels, scores, lambda,
                    mu * StageProgress(optimizer.Step, batches * stage.Epochs), targets);
                tape.Backward(loss);
                optimizer.ClipGradientNorm(_o.MaxGradientNorm);
                optimizer.Update(schedule.Factor(optimizer.Step), pool);
                optimizer.ZeroGrad(pool);

                state.LossSum += loss.Data[0];
                state.LossCount++;
                examplesSeen += count;
                state.Batch = b + 1;
                progress?.Invoke(new TrainingProgress(stageIndex, epoch, stage.Epochs, b + 1, batches,
                    state.LossSum / state.LossCount, examplesSeen / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
                bool stop = cancel.IsCancellationRequested;
                if (stop || (_o.SaveEverySteps > 0 && optimizer.Step % _o.SaveEverySteps == 0 && b + 1 < batches))
                {
                    state.Epoch = epoch;
                    SaveResume(checkpoint, state, optimizer, rng);
                    if (stop)
                    {
                        log.WriteLine("interrupted: resume state saved in "
                            + $"{Path.Combine(_o.OutputDirectory, ResumeFolder)} (continue with --resume)");
                        return false;
                    }
                }
            }

            var report = EndOfEpoch(stage, stageIndex, epoch, graph, config, weights, checkpoint, dev, devSoft, state,
                pool);
            Reports.Add(report);
            LogEpoch(report);
            state.Epoch = epoch + 1;
            state.Batch = 0;
            state.LossSum = 0;
            state.LossCount = 0;
            SaveResume(checkpoint, state, optimizer, rng);
        }
        return true;
    }

    /// <summary>The bi-modal weight ramps from 0 to mu over the first half of a gate stage and stays at mu
    /// for the second. At g = 1 its gradient, -mu/(L N), outweighs the L1 gradient lambda (j+1)/(L^2 N)
    /// whenever mu >= lambda (j+1)/L (METHOD.md's default mu = lambda included), so applied in full from
    /// the first step it would pin every gate at 1; ramped, the L1 term first finds the tokens to drop,
    /// and the full bi-modal term then has half the stage to settle the gates at 0 or 1.</summary>
    static float StageProgress(long step, long totalSteps) => totalSteps <= 0 ? 1f
        : Math.Min(1f, 2f * step / totalSteps);

    IEnumerable<ParameterGroup> ParameterGroups(BertTrainingGraph graph, bool gated)
    {
        // No weight decay on biases and LayerNorm parameters (BERT practice) nor on gates (METHOD.md).
        static bool NoDecay(string name) => name.EndsWith(".bias", StringComparison.Ordinal)
            || name.Contains("LayerNorm", StringComparison.Ordinal);
        var model = graph.Parameters.Where(p => !p.Name.EndsWith(".gate", StringComparison.Ordinal)).ToList();
        yield return new ParameterGroup("decay", model.Where(p => !NoDecay(p.Name)).Select(p => p.Tensor),
            _o.LearningRate, _o.WeightDecay);
        yield return new ParameterGroup("no-decay", model.Where(p => NoDecay(p.Name)).Select(p => p.Tensor),
            _o.LearningRate);
        if (gated)
            yield return new ParameterGroup("gates", graph.Gates, _o.GateLearningRate,
                projection: GateOps.ProjectGates);
    }

    EpochReport EndOfEpoch(Stage stage, int stageIndex, int epoch, BertTrainingGraph graph, BertConfig config,
        BertWeights weights,
        BertCheckpoint checkpoint, EncodedExample[] dev, EncodedExample[] devSoft, TrainerState state, WorkerPool pool)
    {
        var engine = new BertEngine(config, weights);
        var hard = Evaluator.Evaluate(engine, _o.Task, dev, useGates: true, pool);
        IReadOnlyDictionary<string, double>? soft = null;
        double meanGate = 1, undecided = 0;
        int[]? kept = null;
        if (stage.Gated)
        {
            soft = Evaluator.EvaluateSoft(graph, _o.Task, devSoft, pool);
            var gates = weights.Layers.Select(l => l.Gate!.Values).ToArray();
            meanGate = gates.SelectMany(g => g).Average(g => (double)g);
            undecided = gates.SelectMany(g => g).Count(g => g > 0.1f && g < 0.9f) / (double)gates.Sum(g => g.Length);
            kept = TokenGateEvaluator.ComputeKeptCounts(gates, config.GateThreshold);
        }
        // A gated stage keeps shrinking its token counts as it trains, so its last epoch is the model
        // that reflects lambda; a dense stage keeps its best dev epoch.
        bool save = stage.Gated ? epoch + 1 == stage.Epochs : hard.MainMetric > state.BestMetric;
        if (save)
        {
            state.BestMetric = hard.MainMetric;
            SaveCheckpoint(checkpoint, _o.OutputDirectory);
        }
        double loss = state.LossCount > 0 ? state.LossSum / state.LossCount : double.NaN;
        return new EpochReport(stageIndex, stage.Gated, epoch, loss, hard, soft, meanGate, undecided, kept, save);
    }

    void LogEpoch(EpochReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        string metrics = string.Join(", ", r.Hard.Metrics.Select(m => string.Create(inv, $"{m.Key} {m.Value:F4}")));
        string line = string.Create(inv,
            $"stage {r.Stage + 1} epoch {r.Epoch + 1}: train loss {r.TrainLoss:F4}, dev {metrics}");
        if (r.Gated)
        {
            string soft = string.Join(", ", r.Soft!.Select(m => string.Create(inv, $"{m.Key} {m.Value:F4}")));
            line += string.Create(inv,
                $" (hard), {soft} (soft); mean gate {r.MeanGate:F3}, undecided {100 * r.UndecidedShare:F1}%, "
                + $"m_j [{string.Join(", ", r.KeptCounts!)}], FLOPs ratio {r.Hard.FlopsRatio:F2}x");
        }
        log.WriteLine(line + (r.Saved ? " -> saved" : ""));
    }

    void SaveCheckpoint(BertCheckpoint checkpoint, string directory)
    {
        checkpoint.Save(directory);
        string vocab = Path.Combine(directory, BertCheckpoint.VocabFile);
        if (!File.Exists(vocab) && _o.Vocab is not null) File.Copy(_o.Vocab, vocab);
    }

    /// <summary>Weights, optimizer moments, step and RNG, replaced as one folder.</summary>
    void SaveResume(BertCheckpoint checkpoint, TrainerState state, AdamW optimizer, Rng rng) =>
        RunFiles.ReplaceDirectory(Path.Combine(_o.OutputDirectory, ResumeFolder), dir =>
        {
            SaveCheckpoint(checkpoint, dir);
            state.Moments = optimizer.ExportState();
            state.RngState = rng.State;
            state.Settings = _o.ResumeSettings();
            state.Write(Path.Combine(dir, StateFile));
        });
}
