using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using EdgeBert.Autograd;
using EdgeBert.Kernels;
using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Cli;

/// <summary>`edgebert train`, `edgebert eval` and `edgebert bench train`.</summary>
static class TrainVerbs
{
    public const string BenchTrainUsage = """
        edgebert bench train (--shape base|mini|tiny | --model DIR) --seq N --batch B --threads T [--seconds X] [--json]
          One training step (forward, backward, AdamW) on random ids: ms per step and tokens/s.
        """;

    public static void Register(List<CliApp.Verb> verbs)
    {
        verbs.Add(new CliApp.Verb("train", "fine-tune a model on a GLUE task, optionally learning token gates",
            """
            edgebert train --task T --data DIR|FILE --init MODEL_DIR|random:tiny|mini|small --out DIR [--vocab FILE]
                           [--epochs 3] [--lr 5e-5] [--batch-size 32] [--max-len 128] [--warmup 0.1] [--seed 42]
                           [--init-seed SEED] [--threads N] [--resume] [--max-train N] [--save-every STEPS]
                           [--gates one-stage|two-stage --lambda X [--mu X] [--gate-lr 1e-2] [--gate-positions N]
                                   [--gate-threshold T] [--distill A [--teacher DIR]] [--keep-gates]
                                   [--freeze-gates]]
              Tasks: SST-2, CoLA, MRPC, RTE, STS-B, QNLI, WNLI, MNLI, QQP. --data is the task's directory
              (train.tsv and dev.tsv) or its train file (dev.tsv beside it). --threads: default the number of cores.
              After each epoch the dev set is evaluated as `eval` does (texts truncated to the model's length, not
              --max-len), so the logged dev numbers are eval's; the best dense epoch (a gated stage: its last
              epoch) is saved to --out in the HuggingFace layout, with the task in config.json (finetuning_task:
              the model stays recognised as fine-tuned on it after `export --labels`), and --out/resume holds the
              state --resume continues from (weights, optimizer moments, step, RNG), also written on Ctrl+C.
              Without --gates the written model is dense: the gates of a gated --init are dropped.
              Gates (METHOD.md): two-stage fine-tunes densely, then trains gates (skipped if --init is already
              fine-tuned on the task); one-stage trains everything at once. --lambda trades accuracy for
              computation (larger: fewer tokens); --mu (default = lambda) pushes gates to 0 or 1.
              --gate-positions N (default: a dense --init model's gate_positions, else 128): gates for ranks
              0..N-1, at least --max-len (checked before training).
              --keep-gates trains a gated --init model's own gates on (and its positions); without it new gates
              are learned.
              --gate-threshold T (default: the kept gates', else 0.5): a gate >= T keeps its rank; T is
              stored in the written config.json, and every verb serves the model at it.
              --distill A (0..1): the gate stage learns (1 - A) x labels + A x the probabilities of the --init
              model run densely (knowledge distillation; --init must be fine-tuned on the task). --teacher DIR
              distills another model of the same vocabulary instead, e.g. the dense parent of a gated --init
              trained under --freeze-gates.
              --freeze-gates (with --gates two-stage and a gated --init, whose gates it keeps): the gates become 1
              for the kept ranks and 0 after, and stay fixed while the model trains under exactly the tokens
              inference keeps.
              Small models trained from scratch want a larger --lr (e.g. 1e-3).
              --seed sets data order, dropout and new weights; --init-seed, if given, sets the new weights
              (classifier, random model) alone, so runs with one --init-seed and several --seed values can be
              averaged (`average`).
            """, Train));
        verbs.Add(new CliApp.Verb("pretrain", "masked-language-model pretraining on a text corpus",
            """
            edgebert pretrain --corpus DIR (--vocab FILE | --init DIR) --out DIR [--layers 4 --hidden 256 --heads 4
                              --intermediate 1024 --max-len 128] (--hours H | --steps S) [--batch-size 32] [--lr 5e-4]
                              [--warmup 0.05] [--dropout 0.1] [--task T --task-text FILE] [--threads N] [--seed 42]
                              [--checkpoint-minutes 10] [--resume]
              Every .txt file of DIR is tokenized and cut into sequences; 1 in 100 is held out to report MLM
              accuracy and perplexity at each checkpoint, and the perplexity with each sequence's words shuffled:
              equal perplexities mean the model ignores word order (the early bag-of-words plateau of masked-LM
              training, which long sequences make slow to leave; a first phase at --max-len 32 leaves it
              sooner). --init continues a masked-LM model (its shape and vocabulary) with a fresh optimizer and
              schedule. --task/--task-text add the distinct sentences of a GLUE task file, without labels, to the
              corpus (task-adaptive pretraining). 15% of tokens are predicted (80% [MASK], 10% random,
              10% unchanged). --out/resume is rewritten atomically every --checkpoint-minutes and on Ctrl+C;
              --resume continues from it. The finished model (HF BertForMaskedLM layout) goes to --out.
            """, Pretrain));
        verbs.Add(new CliApp.Verb("eval", "evaluate a model on a GLUE dev file",
            """
            edgebert eval [--model DIR] --task T --data DIR|FILE [--no-gates] [--threads N] [--batch-size 32] [--json]
                          [--precision fp32|int8]
              Prints the task's metrics, the FLOPs ratio (dense / run) and ms per example. For a gated model
              it also times the dense run and reports the measured speed-up.
              --data is a labelled file, or the task's directory (its dev file). --model defaults to
              $EDGEBERT_MODEL, else the shipped weights/edgebert-minilm-sst2. --threads: default the number of cores.
              Texts are truncated to the model's length. A model whose head has another number of labels than the
              task is an error; one fine-tuned on another task (config.json finetuning_task), or whose label names
              differ from the task's, runs with a warning on stderr (class i is read as the task's label i).
              --json: {"task","examples","metrics":{..},"flops_ratio","gate_threshold","precision","ms_per_example",
              "speedup"}. The gates run at the model's stored threshold (config.json gate_threshold, else 0.5).
              --precision: the linear layers' arithmetic (default: the model's own; fp32 unless written by quantize).
            """, Eval));
    }

    static int Train(ParsedArgs a, TextWriter o)
    {
        var gatesText = a.String("gates");
        var gates = gatesText switch
        {
            null => GateTraining.None,
            "one-stage" => GateTraining.OneStage,
            "two-stage" => GateTraining.TwoStage,
            _ => throw new UsageException($"--gates must be one-stage or two-stage, got '{gatesText}'"),
        };
        var options = FineTuneArgs(a) with
        {
            Resume = a.Flag("resume"),
            SaveEverySteps = a.Int("save-every", 0, 0),
            Gates = gates,
            Lambda = (float)a.Double("lambda", 0, 0, 1e6),
        };
        a.RejectUnknown();
        if (gates == GateTraining.None && (a.Has("lambda") || a.Has("mu") || a.Has("gate-lr")))
            throw new UsageException("--lambda, --mu and --gate-lr need --gates one-stage|two-stage");

        using var stop = new StopSignal();
        {
            var progress = new PhasedProgress(o);
            var trainer = new FineTuner(options, progress, p => progress.Report(
                $"stage {p.Stage + 1} epoch {p.Epoch + 1}/{p.Epochs}", p.Batch, p.Batches,
                string.Create(CultureInfo.InvariantCulture, $"loss {p.Loss:F4}, {p.ExamplesPerSecond:F1} ex/s")));
            trainer.Run(stop.Token);
            return stop.Requested ? 130 : 0;
        }
    }

    /// <summary>The fine-tuning options `train` and `sweep` share.</summary>
    internal static FineTuneOptions FineTuneArgs(ParsedArgs a)
    {
        var taskName = a.RequiredString("task");
        if (!GlueTask.TryGet(taskName, out var task))
            throw new UsageException(
                $"unknown task '{taskName}' (SST-2, CoLA, MRPC, RTE, STS-B, QNLI, WNLI, MNLI, QQP)");
        return new FineTuneOptions
        {
            Task = task,
            Data = a.RequiredString("data"),
            Init = a.RequiredString("init"),
            OutputDirectory = a.RequiredString("out"),
            Vocab = a.String("vocab"),
            Epochs = a.Int("epochs", 3, 1, 1000),
            LearningRate = (float)a.Double("lr", 5e-5, 0, 1),
            BatchSize = a.Int("batch-size", 32, 1, 4096),
            MaxLength = a.Int("max-len", 128, 2, 4096),
            WarmupFraction = a.Double("warmup", 0.1, 0, 1),
            Seed = a.Int("seed", 42, 0),
            InitSeed = a.Has("init-seed") ? a.Int("init-seed", 42, 0) : null,
            Threads = a.Threads(),
            MaxTrainExamples = a.Has("max-train") ? a.Int("max-train", 0, 1) : null,
            Mu = a.Has("mu") ? (float)a.Double("mu", 0, 0, 1e6) : null,
            GateLearningRate = (float)a.Double("gate-lr", 1e-2, 0, 10),
            GatePositions = a.Has("gate-positions") ? a.Int("gate-positions", 128, 1, 4096) : null,
            GateThreshold = a.Has("gate-threshold") ? (float)a.Double("gate-threshold", 0.5, 0, 1) : null,
            Distill = (float)a.Double("distill", 0, 0, 1),
            Teacher = a.String("teacher"),
            FreezeGates = a.Flag("freeze-gates"),
            KeepGates = a.Flag("keep-gates"),
        };
    }

    static int Pretrain(ParsedArgs a, TextWriter o)
    {
        var options = new PretrainOptions
        {
            CorpusDirectory = a.RequiredString("corpus"),
            Vocab = a.String("vocab"),
            OutputDirectory = a.RequiredString("out"),
            Layers = a.Int("layers", 4, 1, 48), Hidden = a.Int("hidden", 256, 8, 8192),
            Heads = a.Int("heads", 4, 1, 128),
            Intermediate = a.Int("intermediate", 1024, 8, 65536), MaxLength = a.Int("max-len", 128, 8, 4096),
            Hours = a.Has("hours") ? a.Double("hours", 1, 1e-4, 1e4) : null,
            Steps = a.Has("steps") ? a.Int("steps", 1, 1) : null,
            BatchSize = a.Int("batch-size", 32, 1, 4096),
            LearningRate = (float)a.Double("lr", 5e-4, 0, 1),
            WarmupFraction = a.Double("warmup", 0.05, 0, 1),
            Threads = a.Threads(),
            Seed = a.Int("seed", 42, 0),
            CheckpointMinutes = a.Double("checkpoint-minutes", 10, 0.01, 1e4),
            Resume = a.Flag("resume"),
            Init = a.String("init"),
            Dropout = (float)a.Double("dropout", 0.1, 0, 0.9),
            TaskText = TaskText(a),
        };
        a.RejectUnknown();
        if ((options.Vocab is null) == (options.Init is null))
            throw new UsageException("give exactly one of --vocab FILE (new model) "
                + "or --init DIR (continue a masked-LM model)");
        if (options.Init is not null
            && new[] { "layers", "hidden", "heads", "intermediate" }.FirstOrDefault(a.Has) is { } shapeOption)
            throw new UsageException($"--{shapeOption} shapes a new model; with --init the model keeps its own shape");
        if ((options.Hours is null) == (options.Steps is null))
            throw new UsageException("give exactly one of --hours H or --steps S");
        using var stop = new StopSignal();
        {
            var progress = new PhasedProgress(o);
            var trainer = new MlmPretrainer(options, progress, p => progress.Report(
                double.IsNaN(p.Loss) ? "tokenizing corpus" : p.Batches == 0 ? "pretraining (measuring the step time)"
                    : "pretraining", p.Batch, p.Batches,
                double.IsNaN(p.Loss) ? null
                    : string.Create(CultureInfo.InvariantCulture,
                    $"loss {p.Loss:F4}, {p.ExamplesPerSecond:F0} tokens/s")));
            trainer.Run(stop.Token);
            return stop.Requested ? 130 : 0;
        }
    }

    static (GlueTask, string)? TaskText(ParsedArgs a)
    {
        string? name = a.String("task"), file = a.String("task-text");
        if (name is null && file is null) return null;
        if (name is null || file is null) throw new UsageException("--task and --task-text go together");
        if (!GlueTask.TryGet(name, out var task)) throw new UsageException($"unknown task '{name}'");
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: file not found");
        return (task, file);
    }

    static int Eval(ParsedArgs a, TextWriter o)
    {
        var taskName = a.RequiredString("task");
        if (!GlueTask.TryGet(taskName, out var task)) throw new UsageException($"unknown task '{taskName}'");
        string data = a.RequiredString("data");
        string? modelArg = a.String("model");
        bool noGates = a.Flag("no-gates"), json = a.Flag("json");
        int threads = a.Threads(), batchSize = a.Int("batch-size", 32, 1, 4096);
        var engineOptions = PrecisionOption.Read(a);
        a.RejectUnknown();
        string file = Directory.Exists(data) ? task.FilePath(data, GlueSplit.Dev) : data;
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: file not found");

        var checkpoint = BertCheckpoint.Load(ModelLocator.Resolve(modelArg));
        if (TaskData.LabelWarning(checkpoint.Config, task) is { } warning)
            CliApp.Error.WriteLine($"warning: {warning}");
        var engine = BertEngine.Load(checkpoint, engineOptions);
        var examples = TaskData.Encode(GlueReader.Read(task, file), checkpoint.RequireTokenizer(),
            checkpoint.MaxSequenceLength);
        using var pool = new WorkerPool(threads);
        bool gated = engine.HasGates && !noGates;
        EvalResult Pass(string what, bool useGates)
        {
            var bar = ProgressBar.OnStandardError(what, examples.Length);
            var pass = Evaluator.Evaluate(engine, task, examples, useGates, pool, batchSize, done => bar.Report(done));
            bar.Complete();
            return pass;
        }
        var result = Pass("evaluating", gated);
        double? speedup = null;
        if (gated)
        {
            // Alternate gated and dense timings so machine noise hits both alike.
            double gatedMs = result.MillisecondsPerExample, denseMs = double.MaxValue;
            for (int round = 0; round < 2; round++)
            {
                denseMs = Math.Min(denseMs, Pass($"timing dense {round + 1}/2", false).MillisecondsPerExample);
                gatedMs = Math.Min(gatedMs, Pass($"timing gated {round + 1}/2", true).MillisecondsPerExample);
            }
            speedup = denseMs / gatedMs;
            result = result with { MillisecondsPerExample = gatedMs };
        }
        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteString("task", task.Name);
                w.WriteNumber("examples", result.Examples);
                w.WriteStartObject("metrics");
                foreach (var (name, value) in result.Metrics) w.WriteNumber(name, value);
                w.WriteEndObject();
                w.WriteNumber("flops_ratio", Math.Round(result.FlopsRatio, 4));
                if (gated) w.WriteNumber("gate_threshold", engine.Gates!.Threshold);
                w.WriteString("precision", engine.Precision.ToString().ToLowerInvariant());
                w.WriteNumber("ms_per_example", Math.Round(result.MillisecondsPerExample, 4));
                if (speedup is { } s) w.WriteNumber("speedup", Math.Round(s, 3));
                w.WriteEndObject();
            }
            o.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        }
        else
        {
            o.WriteLine($"{task.Name}: {result.Examples} examples");
            foreach (var (name, value) in result.Metrics) o.WriteLine(string.Create(inv, $"  {name,-10} {value:F4}"));
            o.WriteLine(string.Create(inv,
                $"  FLOPs ratio (dense / run): {result.FlopsRatio:F2}x, "
                + $"{result.MillisecondsPerExample:F3} ms per example at {threads} thread(s)"));
            if (speedup is { } s) o.WriteLine(string.Create(inv, $"  measured speed-up over dense: {s:F2}x"));
        }
        return 0;
    }

    public static int BenchTrain(ParsedArgs a, TextWriter o)
    {
        string? modelDir = a.String("model"), shape = a.String("shape");
        int seq = a.RequiredInt("seq", 1, 4096), batchSize = a.RequiredInt("batch", 1, 4096);
        int threads = a.Int("threads", 1, 1, 256);
        double seconds = a.Double("seconds", 3, 0, 3600);
        bool json = a.Flag("json");
        a.RejectUnknown(maxPositionals: 1);
        if ((modelDir is null) == (shape is null))
            throw new UsageException("give exactly one of --model DIR or --shape base|mini|tiny");
        BertConfig config;
        BertWeights weights;
        if (modelDir is not null)
        {
            var checkpoint = BertCheckpoint.Load(modelDir);
            (config, weights) = (checkpoint.Config, checkpoint.Weights);
        }
        else
        {
            if (shape is not ("base" or "mini" or "tiny"))
                throw new UsageException($"--shape must be base, mini or tiny, got '{shape}'");
            config = BertConfig.ForShape(shape);
            weights = WeightInit.Random(config, seed: 1);
        }
        if (seq > config.MaxPositionEmbeddings)
            throw new UsageException($"--seq {seq} exceeds max_position_embeddings {config.MaxPositionEmbeddings}");
        if (weights.ClassifierWeight is null) throw new InvalidDataException("the model has no classifier to train");

        var graph = new BertTrainingGraph(config, weights);
        var optimizer = new AdamW([new ParameterGroup("all", graph.Parameters.Select(p => p.Tensor), 1e-5f, 0.01f)]);
        var rng = new Random(3);
        var batch = Enumerable.Range(0, batchSize).Select(_ =>
            new SequenceInput(Enumerable.Range(0, seq).Select(_ => rng.Next(config.VocabSize)).ToArray())).ToArray();
        var labels = Enumerable.Range(0, batchSize).Select(_ => rng.Next(Math.Max(1, config.NumLabels))).ToArray();
        var scores = new float[batchSize];
        using var pool = new WorkerPool(threads);
        var dropout = new Rng(5);
        var arena = new TensorArena();
        void Step()
        {
            var tape = new Tape(pool, arena);
            var output = graph.Forward(tape, batch, new TrainingForwardOptions { Training = true, Rng = dropout })
                .Output;
            tape.Backward(graph.Loss(tape, output, labels, scores));
            optimizer.Update(pool: pool);
            optimizer.ZeroGrad(pool);
        }
        Step();
        double best = double.MaxValue;
        int runs = 0;
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < seconds || runs < 3)
        {
            long start = Stopwatch.GetTimestamp();
            Step();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            runs++;
        }
        double ms = best * 1e3, tokens = (double)seq * batchSize / best;
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine(json
            ? string.Create(inv, $$"""{"seq":{{seq}},"batch":{{batchSize}},"threads":{{threads}}"""
                + $$""","ms_per_step":{{Math.Round(ms, 3)}},"tokens_per_s":{{Math.Round(tokens, 1)}}}""")
            : string.Create(inv,
                $"train step seq={seq} batch={batchSize} threads={threads}: {ms:F2} ms per step, "
                + $"{tokens:F0} tokens/s (best of {runs})"));
        return 0;
    }
}
