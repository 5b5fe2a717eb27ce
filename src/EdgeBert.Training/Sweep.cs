using System.Globalization;
using System.Text;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Training;

/// <summary>Everything `edgebert sweep` takes: the training options every model shares (Init, Vocab and
/// OutputDirectory are the sweep's; Gates and Lambda are set per model), the lambdas and the timing.</summary>
public sealed record SweepOptions
{
    /// <summary>Threads also drive the dev metrics; timing always runs on one thread. A null Mu means
    /// mu = lambda for each lambda (METHOD.md).</summary>
    public required FineTuneOptions Training { get; init; }
    public required IReadOnlyList<double> Lambdas { get; init; }
    /// <summary>Time the models on the first this many dev examples (null: all of them).</summary>
    public int? TimingExamples { get; init; }
    /// <summary>Timing runs per model; the fastest one counts.</summary>
    public int TimingRounds { get; init; } = 3;
}

/// <summary>One model of a sweep: the dense baseline (<see cref="Lambda"/> null) or a gated model.</summary>
public sealed record SweepRow(double? Lambda, string MetricName, double MetricSoft, double MetricHard,
    double FlopsRatio, double MillisecondsPerExample, double Speedup, double[] KeptPerLayer)
{
    public bool IsDense => Lambda is null;
    public string Name => Lambda is { } l ? $"lambda {SweepFiles.FormatLambda(l)}" : "dense";
}

/// <summary>Trains the dense baseline and one gated model per lambda (two-stage: every gated model starts
/// from the same dense fine-tune), evaluates them on dev, times them at one thread, and writes
/// results.csv, tradeoff.svg and summary.md. A model whose folder holds the finished marker is reused,
/// and an interrupted model continues from its resume state, so a long sweep can be resumed.</summary>
public sealed class Sweep(SweepOptions options, TextWriter log, Action<string, TrainingProgress>? progress = null)
{
    /// <summary>Written into a model's folder once its training is complete; holds the settings
    /// it was trained with.</summary>
    public const string FinishedMarker = "sweep-finished.txt";
    public const string DenseFolder = "dense";

    readonly SweepOptions _o = options;

    /// <summary>Returns the rows (dense first), or null when cancelled (finished models stay on disk).</summary>
    public IReadOnlyList<SweepRow>? Run(CancellationToken cancel = default)
    {
        Validate();
        Directory.CreateDirectory(_o.Training.OutputDirectory);
        int models = _o.Lambdas.Count + 1;

        string denseDir = DenseModel(cancel, models);
        if (cancel.IsCancellationRequested) return null;
        var gatedDirs = new List<string>();
        for (int i = 0; i < _o.Lambdas.Count; i++)
        {
            double lambda = _o.Lambdas[i];
            string dir = Path.Combine(_o.Training.OutputDirectory, SweepFiles.LambdaFolder(lambda));
            var gateOptions = TrainingOptions(denseDir, dir) with
            {
                Gates = GateTraining.TwoStage,
                Lambda = (float)lambda,
                Distill = _o.Training.Distill,
            };
            if (!TrainUnlessFinished($"[{i + 2}/{models}] lambda {SweepFiles.FormatLambda(lambda)}", gateOptions,
                cancel))
                return null;
            gatedDirs.Add(dir);
        }

        var rows = Evaluate(denseDir, gatedDirs);
        SweepFiles.WriteAll(_o.Training.OutputDirectory, _o.Training.Task, rows);
        log.WriteLine($"wrote {SweepFiles.ResultsFile}, {SweepFiles.PlotFile} and {SweepFiles.SummaryFile} to "
            + $"{_o.Training.OutputDirectory}");
        return rows;
    }

    void Validate()
    {
        if (_o.Lambdas.Count == 0) throw new ArgumentException("--lambdas needs at least one value");
        if (_o.Lambdas.Any(l => !(l >= 0) || double.IsInfinity(l)))
            throw new ArgumentException("every lambda must be a finite number >= 0");
        var folders = _o.Lambdas.Select(SweepFiles.LambdaFolder).ToList();
        if (folders.Distinct().Count() != folders.Count) throw new ArgumentException("--lambdas lists a value twice");
        if (_o.TimingRounds < 1) throw new ArgumentException("timing needs at least one round");
        if (_o.Training.FreezeGates || _o.Training.KeepGates)
            throw new ArgumentException($"--{(_o.Training.FreezeGates ? "freeze" : "keep")}-gates is an option of "
                + "train (with a gated --init); a sweep learns its gates");
        if (_o.Training.DevExamples is null) _o.Training.DataFiles();
    }

    /// <summary>The dense baseline's folder: --init itself when it is a dense model fine-tuned on the task,
    /// else a dense fine-tune into OUT/dense (which drops the gates of a gated --init).</summary>
    string DenseModel(CancellationToken cancel, int models)
    {
        if (!_o.Training.Init.StartsWith("random:", StringComparison.Ordinal))
        {
            var init = BertCheckpoint.Load(_o.Training.Init);
            if (!init.Weights.HasGates && TaskData.IsFineTunedOn(init, _o.Training.Task))
            {
                log.WriteLine($"[1/{models}] dense: {_o.Training.Init} is fine-tuned on "
                    + $"{_o.Training.Task.Name}, evaluated as is");
                return _o.Training.Init;
            }
        }
        string dir = Path.Combine(_o.Training.OutputDirectory, DenseFolder);
        TrainUnlessFinished($"[1/{models}] dense", TrainingOptions(_o.Training.Init, dir), cancel);
        return dir;
    }

    // An interrupted sweep continues each model where it stopped (FineTuner starts afresh when there is no state).
    FineTuneOptions TrainingOptions(string init, string outputDirectory) =>
        _o.Training with { Init = init, OutputDirectory = outputDirectory, Gates = GateTraining.None, Distill = 0,
            Resume = true };

    /// <summary>Returns false when cancelled.</summary>
    bool TrainUnlessFinished(string name, FineTuneOptions options, CancellationToken cancel)
    {
        string dir = options.OutputDirectory, marker = Path.Combine(dir, FinishedMarker);
        string settings = Settings(options);
        bool complete = File.Exists(marker) && File.Exists(Path.Combine(dir, BertCheckpoint.ConfigFile))
                        && File.Exists(Path.Combine(dir, BertCheckpoint.WeightsFile));
        if (complete)
        {
            // Reusing a model trained with other settings would silently mix two experiments in one table.
            var differing = SettingsDiff(File.ReadAllText(marker), settings);
            if (differing.Count > 0)
                throw new InvalidOperationException($"{dir} was trained with other settings "
                    + $"({string.Join(", ", differing)}): delete it or choose another --out");
            log.WriteLine($"{name}: finished model in {dir}, not retrained");
            return true;
        }
        log.WriteLine($"{name}: training into {dir}");
        new FineTuner(options, log, p => progress?.Invoke(name, p)).Run(cancel);
        if (cancel.IsCancellationRequested) return false;
        AtomicFile.WriteAllText(marker, settings);
        // The resume state (weights and optimizer moments) is only needed until the marker exists.
        string resume = Path.Combine(dir, FineTuner.ResumeFolder);
        if (Directory.Exists(resume)) Directory.Delete(resume, true);
        return true;
    }

    /// <summary>The settings that decide a model's weights, one "key=value" per line (threads excluded:
    /// they change the summation order only).</summary>
    static string Settings(FineTuneOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            $"task={o.Task.Name}", $"init={o.Init}", $"epochs={o.Epochs}", string.Create(inv, $"lr={o.LearningRate}"),
            $"batch-size={o.BatchSize}", $"max-len={o.MaxLength}", $"seed={o.Seed}",
            $"max-train={o.MaxTrainExamples?.ToString(inv) ?? "all"}",
            $"gates={o.Gates}",
        };
        if (o.Gates != GateTraining.None)
        {
            lines.Add(string.Create(inv, $"lambda={o.Lambda}"));
            lines.Add(string.Create(inv, $"mu={o.Mu?.ToString(inv) ?? "lambda"}"));
            lines.Add(string.Create(inv, $"gate-lr={o.GateLearningRate}"));
            lines.Add($"gate-positions={o.GatePositions?.ToString(inv) ?? "config"}");
            lines.Add($"gate-threshold={o.GateThreshold?.ToString(inv) ?? "model"}");
            if (o.Distill != 0) lines.Add(string.Create(inv, $"distill={o.Distill}"));
        }
        return string.Join('\n', lines) + "\n";
    }

    static List<string> SettingsDiff(string saved, string wanted)
    {
        static Dictionary<string, string> Parse(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        var a = Parse(saved);
        return Parse(wanted).Where(kv => !a.TryGetValue(kv.Key, out var v) || v != kv.Value)
            .Select(kv => $"{kv.Key} {(a.TryGetValue(kv.Key, out var v) ? v : "unset")} -> {kv.Value}").ToList();
    }

    List<SweepRow> Evaluate(string denseDir, List<string> gatedDirs)
    {
        var task = _o.Training.Task;
        var denseCheckpoint = BertCheckpoint.Load(denseDir);
        int maxLength = Math.Min(_o.Training.MaxLength, denseCheckpoint.MaxSequenceLength);
        var devExamples = _o.Training.DevExamples ?? GlueReader.Read(task, _o.Training.DataFiles().Dev);
        // Hard metrics as `eval` computes them (the model's length); soft ones run the training pass, whose
        // sequences must fit the gates (the training length).
        var dev = TaskData.Encode(devExamples, denseCheckpoint.RequireTokenizer(), denseCheckpoint.MaxSequenceLength);
        var devSoft = maxLength == denseCheckpoint.MaxSequenceLength ? dev
            : TaskData.Encode(devExamples, denseCheckpoint.RequireTokenizer(), maxLength);
        var timed = _o.TimingExamples is { } n && n < dev.Length ? dev[..n] : dev;
        log.WriteLine($"evaluating on {dev.Length} dev examples, timing on {timed.Length} at 1 thread, batch size 1, "
            + $"best of {_o.TimingRounds}");

        using var pool = new WorkerPool(_o.Training.Threads);
        var denseEngine = BertEngine.Load(denseCheckpoint);
        var dense = Evaluator.Evaluate(denseEngine, task, dev, useGates: false, pool);
        var gatedRows = new List<SweepRow>();
        double denseMsOverall = double.MaxValue;
        for (int i = 0; i < gatedDirs.Count; i++)
        {
            var checkpoint = BertCheckpoint.Load(gatedDirs[i]);
            double soft = TaskMetrics.Main(task,
                Evaluator.EvaluateSoft(new BertTrainingGraph(checkpoint.Config, checkpoint.Weights), task, devSoft,
                    pool));
            var engine = BertEngine.Load(checkpoint);
            var hard = Evaluator.Evaluate(engine, task, dev, useGates: true, pool);
            var (denseMs, gatedMs) = TimePair(denseEngine, engine, timed);
            denseMsOverall = Math.Min(denseMsOverall, denseMs);
            var row = new SweepRow(_o.Lambdas[i], task.MainMetric, soft, hard.MainMetric, hard.FlopsRatio, gatedMs,
                denseMs / gatedMs, hard.MeanKeptPerLayer);
            gatedRows.Add(row);
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.Name}: {task.MainMetric} {row.MetricHard:F4} hard, {row.MetricSoft:F4} soft; "
                    + $"FLOPs ratio {row.FlopsRatio:F2}x; {gatedMs:F3} ms vs dense {denseMs:F3} ms per "
                    + $"example: {row.Speedup:F2}x"));
        }
        var denseRow = new SweepRow(null, task.MainMetric, dense.MainMetric, dense.MainMetric, dense.FlopsRatio,
            denseMsOverall, 1, dense.MeanKeptPerLayer);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dense: {task.MainMetric} {dense.MainMetric:F4}, {denseMsOverall:F3} ms per example"));
        return [denseRow, .. gatedRows];
    }

    /// <summary>Best-of-N milliseconds per example of the dense baseline and a gated model, at one thread and
    /// one sequence per batch (per-example latency, no batching effects). The runs alternate so machine
    /// noise hits both alike, and the speed-up compares timings taken side by side.</summary>
    (double DenseMs, double GatedMs) TimePair(BertEngine dense, BertEngine gated, EncodedExample[] examples)
    {
        double denseMs = double.MaxValue, gatedMs = double.MaxValue;
        for (int round = 0; round < _o.TimingRounds; round++)
        {
            denseMs = Math.Min(denseMs, Evaluator.Evaluate(dense, _o.Training.Task, examples, false, WorkerPool.Single,
                batchSize: 1).MillisecondsPerExample);
            gatedMs = Math.Min(gatedMs, Evaluator.Evaluate(gated, _o.Training.Task, examples, true, WorkerPool.Single,
                batchSize: 1).MillisecondsPerExample);
        }
        return (denseMs, gatedMs);
    }
}

/// <summary>The files a sweep writes: results.csv, tradeoff.svg and summary.md.</summary>
public static class SweepFiles
{
    public const string ResultsFile = "results.csv", PlotFile = "tradeoff.svg", SummaryFile = "summary.md";
    public const string CsvHeader =
        "lambda,metric_name,metric_soft,metric_hard,flops_ratio,ms_per_example,speedup,kept_per_layer";
    /// <summary>"1.0 point" of a GLUE metric, whose values here are fractions (accuracy 0.91 = 91 points).</summary>
    public const double OnePoint = 0.01;

    /// <summary>Shortest round-trip text of a lambda: "0.5", "2", "1E-05".</summary>
    public static string FormatLambda(double lambda) => lambda.ToString("R", CultureInfo.InvariantCulture);

    public static string LambdaFolder(double lambda) => "lambda-" + FormatLambda(lambda);

    public static void WriteAll(string directory, GlueTask task, IReadOnlyList<SweepRow> rows)
    {
        AtomicFile.WriteAllText(Path.Combine(directory, ResultsFile), Csv(rows));
        AtomicFile.WriteAllText(Path.Combine(directory, PlotFile), TradeoffPlot.Svg(rows, $"{task.Name} dev"));
        AtomicFile.WriteAllText(Path.Combine(directory, SummaryFile), Markdown(task, rows));
    }

    /// <summary>One line per model, the dense one first with lambda "dense"; kept tokens per
    /// layer space-separated.</summary>
    public static string Csv(IReadOnlyList<SweepRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (var r in rows.OrderBy(r => r.IsDense ? 0 : 1))
        {
            string kept = string.Join(' ', r.KeptPerLayer.Select(k => k.ToString("F2", inv)));
            sb.Append(string.Create(inv,
                $"{(r.Lambda is { } l ? FormatLambda(l) : "dense")},{r.MetricName},{r.MetricSoft:F4},"
                + $"{r.MetricHard:F4},{r.FlopsRatio:F4},{r.MillisecondsPerExample:F4},{r.Speedup:F3},{kept}"));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The gated model with the largest FLOPs ratio whose hard metric is at most one point below
    /// dense, or null when none both saves FLOPs and stays that close.</summary>
    public static SweepRow? BestWithinOnePoint(IReadOnlyList<SweepRow> rows)
    {
        var dense = rows.Single(r => r.IsDense);
        return rows.Where(r => !r.IsDense && r.FlopsRatio > 1 && r.MetricHard >= dense.MetricHard - OnePoint - 1e-12)
            .OrderByDescending(r => r.FlopsRatio).FirstOrDefault();
    }

    public static string Markdown(GlueTask task, IReadOnlyList<SweepRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        var dense = rows.Single(r => r.IsDense);
        string metric = dense.MetricName;
        var sb = new StringBuilder();
        sb.Append($"# Token-gate sweep on {task.Name}\n\n");
        sb.Append($"Dev {metric}, soft (training pass, gates scale tokens) and hard (inference, tokens removed); ");
        sb.Append("FLOPs ratio = dense / gated multiply-adds (exact counts); "
            + "time = best of the timing runs at 1 thread, ");
        sb.Append("one sequence per batch; speed-up = dense time / gated time, measured side by side.\n\n");
        sb.Append($"| model | {metric} soft | {metric} hard | vs dense (points) "
            + "| FLOPs ratio | ms / example | speed-up | kept tokens per layer |\n");
        sb.Append("|---|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var r in rows.OrderBy(r => r.IsDense ? 0 : 1))
        {
            string delta = r.IsDense ? ""
                : ((r.MetricHard - dense.MetricHard) / OnePoint).ToString("+0.00;-0.00;0.00", inv);
            sb.Append(string.Create(inv,
                $"| {r.Name} | {r.MetricSoft:F4} | {r.MetricHard:F4} | {delta} | {r.FlopsRatio:F2}x | "
                    + $"{r.MillisecondsPerExample:F3} | {r.Speedup:F2}x | "
                    + $"{string.Join(' ', r.KeptPerLayer.Select(k => k.ToString("F1", inv)))} |\n"));
        }
        sb.Append('\n');
        var best = BestWithinOnePoint(rows);
        sb.Append(best is null
            ? string.Create(inv,
                $"No lambda reduces FLOPs while keeping the hard {metric} within 1.0 point of dense "
                + $"({dense.MetricHard:F4}).\n")
            : string.Create(inv,
                $"Largest FLOPs reduction within 1.0 point of dense: lambda {FormatLambda(best.Lambda!.Value)}, "
                + $"{best.FlopsRatio:F2}x fewer FLOPs and {best.Speedup:F2}x measured speed-up at {metric} "
                + $"{best.MetricHard:F4} (dense {dense.MetricHard:F4}).\n"));
        return sb.ToString();
    }
}
