using System.Diagnostics;
using EdgeBert.Autograd;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Training;

/// <summary>Task metrics of a model on labelled examples, with the exact FLOP counts and the time taken.</summary>
public sealed record EvalResult(
    int Examples,
    IReadOnlyDictionary<string, double> Metrics,
    double MainMetric,
    long Flops,
    long DenseFlops,
    double MillisecondsPerExample,
    double[] MeanKeptPerLayer)
{
    /// <summary>Dense multiply-adds over the ones actually run (1 for a dense model).</summary>
    public double FlopsRatio => (double)DenseFlops / Flops;
}

public static class Evaluator
{
    /// <summary>Runs the inference engine (hard gates unless <paramref name="useGates"/> is false), telling
    /// <paramref name="progress"/> the examples done after each batch.</summary>
    public static EvalResult Evaluate(BertEngine engine, GlueTask task, IReadOnlyList<EncodedExample> examples,
        bool useGates, WorkerPool pool, int batchSize = 32, Action<int>? progress = null)
    {
        var workspace = new InferenceWorkspace();
        var options = new RunOptions(UseGates: useGates);
        var logits = new float[examples.Count][];
        long flops = 0, dense = 0;
        var kept = new double[engine.Config.NumHiddenLayers];
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            int count = Math.Min(batchSize, examples.Count - start);
            var batch = new SequenceInput[count];
            for (int i = 0; i < count; i++) batch[i] = examples[start + i].Input;
            var results = engine.Run(batch, workspace, options, pool);
            for (int i = 0; i < count; i++)
            {
                logits[start + i] = results[i].Logits;
                flops += results[i].Flops;
                dense += results[i].DenseFlops;
                for (int j = 0; j < kept.Length; j++) kept[j] += results[i].Kept[j];
            }
            progress?.Invoke(start + count);
        }
        double ms = clock.Elapsed.TotalMilliseconds / Math.Max(1, examples.Count);
        for (int j = 0; j < kept.Length; j++) kept[j] /= Math.Max(1, examples.Count);
        var metrics = Score(task, examples, logits);
        return new EvalResult(examples.Count, metrics, TaskMetrics.Main(task, metrics), flops, dense, ms, kept);
    }

    /// <summary>The "soft" metric: the training graph's forward pass with gates scaling tokens, no dropout.</summary>
    public static IReadOnlyDictionary<string, double> EvaluateSoft(BertTrainingGraph graph, GlueTask task,
        IReadOnlyList<EncodedExample> examples, WorkerPool pool, int batchSize = 32)
    {
        var logits = new float[examples.Count][];
        int labels = graph.Config.NumLabels;
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            int count = Math.Min(batchSize, examples.Count - start);
            var batch = new SequenceInput[count];
            for (int i = 0; i < count; i++) batch[i] = examples[start + i].Input;
            var tape = new Tape(pool) { IsRecording = false };
            var output = graph.Forward(tape, batch, new TrainingForwardOptions { UseGates = true }).Output.Data;
            for (int i = 0; i < count; i++) logits[start + i] = output.AsSpan(i * labels, labels).ToArray();
        }
        return Score(task, examples, logits);
    }

    static IReadOnlyDictionary<string, double> Score(GlueTask task, IReadOnlyList<EncodedExample> examples,
        float[][] logits)
    {
        if (task.IsRegression)
        {
            var predicted = logits.Select(l => l[0]).ToArray();
            return TaskMetrics.Compute(task, predicted, examples.Select(e => e.Score).ToArray());
        }
        var classes = logits.Select(ArgMax).ToArray();
        return TaskMetrics.Compute(task, classes, examples.Select(e => e.Label).ToArray());
    }

    public static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
