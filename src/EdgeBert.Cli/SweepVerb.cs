using System.Globalization;
using EdgeBert.Training;

namespace EdgeBert.Cli;

/// <summary>`edgebert sweep`: the accuracy / computation trade-off over several lambdas.</summary>
static class SweepVerb
{
    public static void Register(List<CliApp.Verb> verbs) => verbs.Add(new CliApp.Verb("sweep",
        "train one gated model per lambda plus the dense baseline and plot the trade-off",
        """
        edgebert sweep --task T --data DIR|FILE --init MODEL_DIR|random:tiny|mini|small --lambdas a,b,c,.. --out DIR
                       [--vocab FILE] [--epochs 3] [--lr 5e-5] [--warmup 0.1] [--batch-size 32] [--max-len 128]
                       [--seed 42] [--threads N] [--max-train N] [--mu X] [--gate-lr 1e-2] [--gate-positions N]
                       [--gate-threshold T] [--distill A] [--timing-examples N]
          --data and --threads as for train. The dense baseline is --init if it is a dense model fine-tuned on
          the task, else a dense fine-tune into OUT/dense (a gated --init loses its gates there). Each lambda
          trains gates (two-stage, from the dense baseline) into OUT/lambda-<value>; --mu defaults to each
          lambda; --gate-threshold as for train (stored in each model). Every model is evaluated on dev (hard
          gates as `eval` runs them, soft gates at --max-len; exact FLOPs) and timed against the dense
          baseline at 1 thread, one sequence per batch, alternating runs, best of 3 (--timing-examples: time on
          the first N dev examples only). --keep-gates and --freeze-gates are train's: a sweep learns its gates.
          Writes OUT/results.csv, OUT/tradeoff.svg and OUT/summary.md. Models already finished are reused and
          an interrupted one continues from its resume state, so rerunning the same command resumes a sweep.
        """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        var options = new SweepOptions
        {
            Training = TrainVerbs.FineTuneArgs(a),
            Lambdas = ParseLambdas(a.RequiredString("lambdas")),
            TimingExamples = a.Has("timing-examples") ? a.Int("timing-examples", 0, 1) : null,
        };
        a.RejectUnknown();

        using var stop = new StopSignal();
        {
            var progress = new PhasedProgress(o);
            var sweep = new Sweep(options, progress, (model, p) => progress.Report(
                $"{model} stage {p.Stage + 1} epoch {p.Epoch + 1}/{p.Epochs}", p.Batch, p.Batches,
                string.Create(CultureInfo.InvariantCulture, $"loss {p.Loss:F4}, {p.ExamplesPerSecond:F1} ex/s")));
            var rows = sweep.Run(stop.Token);
            if (rows is null)
            {
                o.WriteLine("interrupted: run the same command again to resume the sweep");
                return 130;
            }
            o.WriteLine();
            o.Write(File.ReadAllText(Path.Combine(options.Training.OutputDirectory, SweepFiles.SummaryFile)));
            return 0;
        }
    }

    static List<double> ParseLambdas(string text)
    {
        var lambdas = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
                || !double.IsFinite(v) || v < 0)
                throw new UsageException($"--lambdas expects comma-separated numbers >= 0, got '{part}'");
            lambdas.Add(v);
        }
        if (lambdas.Distinct().Count() != lambdas.Count) throw new UsageException("--lambdas lists a value twice");
        return lambdas;
    }
}
