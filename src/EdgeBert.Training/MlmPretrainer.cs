using System.Diagnostics;
using System.Globalization;
using EdgeBert.Autograd;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Training;

/// <summary>Everything `edgebert pretrain` takes.</summary>
public sealed record PretrainOptions
{
    public required string CorpusDirectory { get; init; }
    /// <summary>The vocabulary of a new model; not needed with <see cref="Init"/>.</summary>
    public string? Vocab { get; init; }
    public required string OutputDirectory { get; init; }
    public int Layers { get; init; } = 4;
    public int Hidden { get; init; } = 256;
    public int Heads { get; init; } = 4;
    public int Intermediate { get; init; } = 1024;
    public int MaxLength { get; init; } = 128;
    /// <summary>Wall-clock budget; the step count is fixed from the measured speed after a few steps.</summary>
    public double? Hours { get; init; }
    public long? Steps { get; init; }
    public bool Resume { get; init; }
    public int BatchSize { get; init; } = 32;
    public float LearningRate { get; init; } = 5e-4f;
    public double WarmupFraction { get; init; } = 0.05;
    public float WeightDecay { get; init; } = 0.01f;
    public int Seed { get; init; } = 42;
    public int Threads { get; init; } = 1;
    /// <summary>Every this-many-th sequence is held out for the MLM accuracy/perplexity report.</summary>
    public int HoldOutEvery { get; init; } = 100;
    public double CheckpointMinutes { get; init; } = 10;
    /// <summary>Start from this masked-LM model's weights (fresh optimizer and schedule)
    /// instead of a random init.</summary>
    public string? Init { get; init; }
    public float Dropout { get; init; } = 0.1f;
    /// <summary>Unlabeled sentences of a GLUE task file added to the corpus (task-adaptive pretraining).</summary>
    public (GlueTask Task, string File)? TaskText { get; init; }

    /// <summary>The options that decide what a run computes, by their `pretrain` flag names, for
    /// <see cref="RunFiles.CheckSettings"/>. Paths, --threads and --checkpoint-minutes are left out: they do not
    /// change the run.</summary>
    public IReadOnlyDictionary<string, string> ResumeSettings()
    {
        var inv = CultureInfo.InvariantCulture;
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["layers"] = Layers.ToString(inv), ["hidden"] = Hidden.ToString(inv), ["heads"] = Heads.ToString(inv),
            ["intermediate"] = Intermediate.ToString(inv), ["max-len"] = MaxLength.ToString(inv),
            ["hours"] = Hours?.ToString("R", inv) ?? "unset", ["steps"] = Steps?.ToString(inv) ?? "unset",
            ["batch-size"] = BatchSize.ToString(inv), ["lr"] = LearningRate.ToString("R", inv),
            ["warmup"] = WarmupFraction.ToString("R", inv), ["weight-decay"] = WeightDecay.ToString("R", inv),
            ["seed"] = Seed.ToString(inv), ["hold-out-every"] = HoldOutEvery.ToString(inv),
            ["dropout"] = Dropout.ToString("R", inv), ["task"] = TaskText?.Task.Name ?? "unset",
        };
    }
}

/// <summary>A held-out report. ShuffledPerplexity is the perplexity with each sequence's tokens (between [CLS] and
/// [SEP]) shuffled and the same positions masked: a model that ignores word order scores the same on both,
/// which is what a masked LM stuck on its early bag-of-words plateau does.</summary>
public sealed record MlmReport(long Step, double HeldOutAccuracy, double HeldOutPerplexity, int HeldOutMasked,
    double ShuffledPerplexity);

/// <summary>Masked-language-model pretraining (BERT's recipe without next-sentence prediction): 15% of
/// the tokens are chosen, of those 80% become [MASK], 10% a random token, 10% stay. Writes periodic
/// atomic checkpoints that --resume continues from, and reports accuracy and perplexity on a held-out
/// slice of the corpus.</summary>
public sealed class MlmPretrainer(PretrainOptions options, TextWriter log, Action<TrainingProgress>? progress = null)
{
    const string StateFile = "trainer_state.bin";
    readonly PretrainOptions _o = options;

    public List<MlmReport> Reports { get; } = [];

    public void Run(CancellationToken cancel = default)
    {
        if (_o.Steps is null && _o.Hours is null) throw new ArgumentException("give --steps or --hours");
        if (!Directory.Exists(_o.CorpusDirectory))
            throw new DirectoryNotFoundException($"{_o.CorpusDirectory}: corpus directory not found");
        string resumeDir = Path.Combine(_o.OutputDirectory, FineTuner.ResumeFolder);
        if (_o.Resume && RunFiles.RecoverDirectory(resumeDir) is { } recovered) log.WriteLine(recovered);
        bool resuming = _o.Resume && File.Exists(Path.Combine(resumeDir, StateFile));
        // Read and checked before anything is loaded, so a refused resume fails at once.
        var state = resuming ? TrainerState.Read(Path.Combine(resumeDir, StateFile)) : new TrainerState();
        if (resuming) RunFiles.CheckSettings(resumeDir, state.Settings, _o.ResumeSettings());
        var checkpoint = resuming ? BertCheckpoint.Load(resumeDir) : _o.Init is { } init ? LoadInit(init) : Create();
        var tokenizer = checkpoint.RequireTokenizer();
        var (train, heldOut) = ReadCorpus(tokenizer, checkpoint.Config.MaxPositionEmbeddings);
        log.WriteLine($"corpus: {train.Count} training and {heldOut.Count} held-out sequences of up to " +
                      $"{_o.MaxLength} tokens ({train.Sum(s => (long)s.Length)} tokens)");

        var graph = new BertTrainingGraph(checkpoint.Config, checkpoint.Weights);
        static bool NoDecay(string name) => name.EndsWith(".bias", StringComparison.Ordinal)
            || name.Contains("LayerNorm", StringComparison.Ordinal);
        var optimizer = new AdamW([
            new ParameterGroup("decay", graph.Parameters.Where(p => !NoDecay(p.Name)).Select(p => p.Tensor),
                _o.LearningRate, _o.WeightDecay),
            new ParameterGroup("no-decay", graph.Parameters.Where(p => NoDecay(p.Name)).Select(p => p.Tensor),
                _o.LearningRate),
        ]);
        if (state.Moments is not null) optimizer.ImportState(state.Moments);
        var rng = new Rng(state.RngState ?? (ulong)_o.Seed * 31 + 7);
        using var pool = new WorkerPool(_o.Threads);
        long totalSteps = state.TotalSteps > 0 ? state.TotalSteps : _o.Steps ?? 0;
        var clock = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();
        long tokens = 0;
        var order = RunFiles.Permutation(train.Count, (ulong)_o.Seed * 1_000_003UL + (ulong)state.Epoch + 17);
        var arena = new TensorArena();
        while (totalSteps == 0 || optimizer.Step < totalSteps)
        {
            if (state.Batch + _o.BatchSize > order.Length)
            {
                state.Epoch++;
                state.Batch = 0;
                order = RunFiles.Permutation(train.Count, (ulong)_o.Seed * 1_000_003UL + (ulong)state.Epoch + 17);
            }
            var batch = new int[_o.BatchSize][];
            for (int i = 0; i < batch.Length; i++) batch[i] = train[order[state.Batch + i]];
            state.Batch += _o.BatchSize;

            var (inputs, maskedRows, targets) = Mask(batch, tokenizer, checkpoint.Config.VocabSize, rng);
            var tape = new Tape(pool, arena);
            var hidden = graph.Forward(tape, inputs,
                new TrainingForwardOptions { Training = true, Rng = rng, DropoutProbability = _o.Dropout }).Output;
            var (loss, correct) = graph.MaskedLmLoss(tape, hidden, maskedRows, targets);
            tape.Backward(loss);
            optimizer.ClipGradientNorm(1f);
            var schedule = LinearWarmupDecay.FromFraction(_o.WarmupFraction, Math.Max(totalSteps, optimizer.Step + 1));
            // While --hours is still timing the first steps the warm-up's length is unknown: rather than
            // jolt the model at full rate, those steps only fill AdamW's moments (rate 0).
            optimizer.Update(totalSteps > 0 ? schedule.Factor(optimizer.Step) : _o.WarmupFraction > 0 ? 0f : 1f, pool);
            optimizer.ZeroGrad(pool);
            tokens += inputs.Sum(s => s.InputIds.Length);
            state.LossSum += loss.Data[0];
            state.LossCount++;

            if (totalSteps == 0 && optimizer.Step == 20)
            {
                // A wall-clock budget becomes a fixed step count, so the schedule and --resume agree.
                double perStep = clock.Elapsed.TotalSeconds / 20;
                totalSteps = Math.Max(21, (long)(_o.Hours!.Value * 3600 / perStep));
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{perStep * 1e3:F0} ms per step: {totalSteps} steps fit in {_o.Hours} h"));
            }
            state.TotalSteps = totalSteps;
            progress?.Invoke(new TrainingProgress(0, state.Epoch, 0, (int)optimizer.Step, (int)totalSteps,
                state.LossSum / state.LossCount, tokens / clock.Elapsed.TotalSeconds));

            bool last = totalSteps > 0 && optimizer.Step >= totalSteps;
            bool stop = cancel.IsCancellationRequested;
            if (last || stop || sinceCheckpoint.Elapsed.TotalMinutes >= _o.CheckpointMinutes)
            {
                var report = EvaluateHeldOut(graph, heldOut, tokenizer, checkpoint.Config.VocabSize, pool,
                    optimizer.Step);
                Reports.Add(report);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"step {optimizer.Step}/{totalSteps}: train loss {state.LossSum / state.LossCount:F4}, "
                        + $"held-out MLM accuracy {report.HeldOutAccuracy:F4}, "
                        + $"perplexity {report.HeldOutPerplexity:F2} ({report.ShuffledPerplexity:F2} with words "
                        + $"shuffled), {tokens / clock.Elapsed.TotalSeconds:F0} tokens/s"));
                state.LossSum = 0; state.LossCount = 0;
                state.Moments = optimizer.ExportState();
                state.RngState = rng.State;
                state.Settings = _o.ResumeSettings();
                RunFiles.ReplaceDirectory(resumeDir, dir =>
                {
                    Save(checkpoint, dir);
                    state.Write(Path.Combine(dir, StateFile));
                });
                if (last) Save(checkpoint, _o.OutputDirectory);
                sinceCheckpoint.Restart();
                if (stop)
                {
                    log.WriteLine($"interrupted: state saved in {resumeDir} (continue with --resume)");
                    return;
                }
            }
        }
        log.WriteLine($"done: model in {_o.OutputDirectory}");
    }

    BertCheckpoint Create()
    {
        if (_o.Vocab is null) throw new ArgumentException("give --vocab FILE (or --init DIR)");
        if (!File.Exists(_o.Vocab)) throw new FileNotFoundException($"{_o.Vocab}: file not found");
        var tokenizer = BertWordPieceTokenizer.Load(_o.Vocab);
        if (_o.Hidden % _o.Heads != 0)
            throw new ArgumentException($"--hidden {_o.Hidden} is not a multiple of --heads {_o.Heads}");
        var config = new BertConfig
        {
            VocabSize = tokenizer.VocabSize, HiddenSize = _o.Hidden, NumHiddenLayers = _o.Layers,
            NumAttentionHeads = _o.Heads,
            IntermediateSize = _o.Intermediate, MaxPositionEmbeddings = Math.Max(_o.MaxLength, 128),
        };
        var weights = WeightInit.Random(config, _o.Seed, classifier: false, mlmHead: true);
        return new BertCheckpoint(config, weights, tokenizer, Path.GetDirectoryName(Path.GetFullPath(_o.Vocab)));
    }

    static BertCheckpoint LoadInit(string directory)
    {
        var checkpoint = BertCheckpoint.Load(directory);
        if (checkpoint.Weights.MlmHead is null)
            throw new InvalidDataException($"{directory}: --init needs a masked-LM model (cls.predictions.* tensors)");
        return checkpoint;
    }

    /// <summary>Every .txt file (and the task text, if given), tokenized whole and cut into
    /// [CLS] piece [SEP] sequences; every
    /// HoldOutEvery-th sequence is held out.</summary>
    (List<int[]> Train, List<int[]> HeldOut) ReadCorpus(BertWordPieceTokenizer tokenizer, int maxPositions)
    {
        var files = Directory.GetFiles(_o.CorpusDirectory, "*.txt").OrderBy(f => f, StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new FileNotFoundException($"{_o.CorpusDirectory}: no .txt files");
        // WikiText writes out-of-vocabulary words as "<unk>": make them the real [UNK] token.
        var documents = files.Select(f => (Func<string>)(() => File.ReadAllText(f).Replace("<unk>", "[UNK]"))).ToList();
        if (_o.TaskText is var (task, file))
            documents.Add(() => string.Join('\n', GlueReader.Read(task, file)
                .SelectMany(e => e.TextB is null ? [e.TextA] : new[] { e.TextA, e.TextB })
                    .Distinct(StringComparer.Ordinal)));
        var perFile = new int[documents.Count][];
        int done = 0;
        Parallel.For(0, documents.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _o.Threads) }, i =>
        {
            perFile[i] = tokenizer.Tokenize(documents[i]()).Select(t => t.Id).ToArray();
            int finished = Interlocked.Increment(ref done);
            progress?.Invoke(new TrainingProgress(0, 0, 0, finished, documents.Count, double.NaN, double.NaN));
        });
        int piece = Math.Min(_o.MaxLength, maxPositions) - 2;
        var train = new List<int[]>();
        var heldOut = new List<int[]>();
        int index = 0;
        foreach (var ids in perFile)
            for (int start = 0; start + 8 <= ids.Length; start += piece, index++)
            {
                int length = Math.Min(piece, ids.Length - start);
                var sequence = new int[length + 2];
                sequence[0] = tokenizer.ClsId;
                ids.AsSpan(start, length).CopyTo(sequence.AsSpan(1));
                sequence[^1] = tokenizer.SepId;
                (index % _o.HoldOutEvery == 0 ? heldOut : train).Add(sequence);
            }
        return (train, heldOut);
    }

    /// <summary>BERT's masking: 15% of the non-special tokens are predicted; 80% of those are replaced by
    /// [MASK], 10% by a random non-special token, 10% left as they are.</summary>
    static (SequenceInput[] Inputs, int[] MaskedRows, int[] Targets) Mask(int[][] batch,
        BertWordPieceTokenizer tokenizer, int vocab, Rng rng)
    {
        var inputs = new SequenceInput[batch.Length];
        var rows = new List<int>();
        var targets = new List<int>();
        int row = 0;
        for (int s = 0; s < batch.Length; s++)
        {
            var ids = (int[])batch[s].Clone();
            for (int p = 0; p < ids.Length; p++, row++)
            {
                if (p == 0 || p == ids.Length - 1 || rng.NextFloat() >= 0.15f) continue;
                rows.Add(row);
                targets.Add(ids[p]);
                float r = rng.NextFloat();
                if (r < 0.8f) ids[p] = tokenizer.MaskId;
                else if (r < 0.9f) ids[p] = 5 + rng.NextInt(vocab - 5);
            }
            inputs[s] = new SequenceInput(ids);
        }
        if (rows.Count == 0)
        {
            // A batch of very short sequences can draw no token: predict the first real token.
            rows.Add(1);
            targets.Add(batch[0][1]);
            inputs[0].InputIds[1] = tokenizer.MaskId;
        }
        return (inputs, rows.ToArray(), targets.ToArray());
    }

    MlmReport EvaluateHeldOut(BertTrainingGraph graph, List<int[]> heldOut, BertWordPieceTokenizer tokenizer, int vocab,
        WorkerPool pool, long step)
    {
        var (accuracy, perplexity, masked) = MaskedLmScore(graph, heldOut, tokenizer, vocab, pool);
        var shuffle = new Rng(777); // the same order at every report
        var (_, shuffledPerplexity, _) = MaskedLmScore(graph, heldOut.Select(s => ShuffleInterior(s, shuffle)).ToList(),
            tokenizer, vocab, pool);
        return new MlmReport(step, accuracy, perplexity, masked, shuffledPerplexity);
    }

    /// <summary>A copy with the tokens between [CLS] and [SEP] in random order (Fisher-Yates).</summary>
    static int[] ShuffleInterior(int[] sequence, Rng rng)
    {
        var copy = (int[])sequence.Clone();
        for (int i = copy.Length - 2; i > 1; i--)
        {
            int j = 1 + rng.NextInt(i);
            (copy[i], copy[j]) = (copy[j], copy[i]);
        }
        return copy;
    }

    (double Accuracy, double Perplexity, int Masked) MaskedLmScore(BertTrainingGraph graph, List<int[]> sequences,
        BertWordPieceTokenizer tokenizer, int vocab, WorkerPool pool)
    {
        // the same masks at every report (and for equal lengths, the same positions), so reports compare
        var rng = new Rng(12345);
        double lossSum = 0;
        int correct = 0, masked = 0;
        for (int start = 0; start < sequences.Count; start += _o.BatchSize)
        {
            var batch = sequences.GetRange(start, Math.Min(_o.BatchSize, sequences.Count - start)).ToArray();
            var (inputs, rows, targets) = Mask(batch, tokenizer, vocab, rng);
            var tape = new Tape(pool) { IsRecording = false };
            var hidden = graph.Forward(tape, inputs, new TrainingForwardOptions()).Output;
            var (loss, right) = graph.MaskedLmLoss(tape, hidden, rows, targets);
            lossSum += loss.Data[0] * targets.Length;
            correct += right;
            masked += targets.Length;
        }
        return ((double)correct / Math.Max(1, masked), Math.Exp(lossSum / Math.Max(1, masked)), masked);
    }

    /// <summary>The checkpoint with its vocabulary (which may live under another file name than vocab.txt).</summary>
    void Save(BertCheckpoint checkpoint, string directory)
    {
        checkpoint.Save(directory);
        string vocab = Path.Combine(directory, BertCheckpoint.VocabFile);
        if (!File.Exists(vocab) && _o.Vocab is not null) File.Copy(_o.Vocab, vocab);
    }
}
