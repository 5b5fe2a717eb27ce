namespace EdgeBert.Training;

/// <summary>Names of the metrics: keys of the dictionaries returned by <see cref="TaskMetrics"/>.</summary>
public static class MetricNames
{
    public const string Accuracy = "accuracy";
    public const string F1 = "f1";
    public const string Mcc = "mcc";
    public const string Pearson = "pearson";
    public const string Spearman = "spearman";
}

/// <summary>
/// Evaluation metrics, accumulated in double. Inputs must be non-empty and of equal length
/// (else <see cref="ArgumentException"/>). Degenerate cases, chosen so a training log never shows
/// NaN for a healthy model:
/// <list type="bullet">
/// <item>F1 with no true positive (including no positives at all, predicted or gold) is 0.</item>
/// <item>Matthews correlation is 0 when either the gold labels or the predictions hold a single
/// class (zero variance), as scikit-learn does.</item>
/// <item>Pearson and Spearman are 0 when either side is constant; they are NaN only when an input
/// is NaN or infinite (a diverged model), which should show.</item>
/// </list>
/// </summary>
public static class Metrics
{
    public static double Accuracy(ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        int correct = 0;
        for (int i = 0; i < predicted.Length; i++)
        {
            if (predicted[i] == gold[i])
                correct++;
        }
        return (double)correct / predicted.Length;
    }

    /// <summary>F1 of the class <paramref name="positive"/>: 2TP / (2TP + FP + FN).</summary>
    public static double F1(ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold, int positive = 1)
    {
        CheckLengths(predicted.Length, gold.Length);
        long truePositive = 0, falsePositive = 0, falseNegative = 0;
        for (int i = 0; i < predicted.Length; i++)
        {
            bool predictedPositive = predicted[i] == positive, goldPositive = gold[i] == positive;
            if (predictedPositive && goldPositive) truePositive++;
            else if (predictedPositive) falsePositive++;
            else if (goldPositive) falseNegative++;
        }
        return truePositive == 0 ? 0.0 : 2.0 * truePositive / (2.0 * truePositive + falsePositive + falseNegative);
    }

    /// <summary>
    /// Matthews correlation coefficient for any number of classes (Gorodkin's R_K; for two classes
    /// it equals (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))). Labels are class indices >= 0.
    /// </summary>
    public static double MatthewsCorrelation(ReadOnlySpan<int> predicted, ReadOnlySpan<int> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        int classes = 0;
        for (int i = 0; i < predicted.Length; i++)
        {
            if (predicted[i] < 0 || gold[i] < 0)
                throw new ArgumentException($"class indices must be >= 0 (example {i})");
            classes = Math.Max(classes, Math.Max(predicted[i], gold[i]) + 1);
        }
        var predictedCount = new long[classes];
        var goldCount = new long[classes];
        long correct = 0;
        for (int i = 0; i < predicted.Length; i++)
        {
            predictedCount[predicted[i]]++;
            goldCount[gold[i]]++;
            if (predicted[i] == gold[i])
                correct++;
        }
        long n = predicted.Length;
        long agreement = 0, predictedSquares = 0, goldSquares = 0;
        for (int k = 0; k < classes; k++)
        {
            agreement += predictedCount[k] * goldCount[k];
            predictedSquares += predictedCount[k] * predictedCount[k];
            goldSquares += goldCount[k] * goldCount[k];
        }
        double predictedVariance = (double)(n * n - predictedSquares);
        double goldVariance = (double)(n * n - goldSquares);
        if (predictedVariance == 0 || goldVariance == 0)
            return 0.0;
        return (double)(correct * n - agreement) / (Math.Sqrt(predictedVariance) * Math.Sqrt(goldVariance));
    }

    public static double Pearson(ReadOnlySpan<float> predicted, ReadOnlySpan<float> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        var x = new double[predicted.Length];
        var y = new double[gold.Length];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = predicted[i];
            y[i] = gold[i];
        }
        return PearsonOf(x, y);
    }

    /// <summary>Spearman's rho: Pearson correlation of the ranks, tied values sharing their average rank.</summary>
    public static double Spearman(ReadOnlySpan<float> predicted, ReadOnlySpan<float> gold)
    {
        CheckLengths(predicted.Length, gold.Length);
        if (!AllFinite(predicted) || !AllFinite(gold))
            return double.NaN;
        return PearsonOf(AverageRanks(predicted), AverageRanks(gold));
    }

    /// <summary>1-based ranks in ascending order; a run of equal values gets the mean of its positions.</summary>
    internal static double[] AverageRanks(ReadOnlySpan<float> values)
    {
        float[] keys = values.ToArray();
        int[] order = new int[keys.Length];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        Array.Sort(keys, order);

        var ranks = new double[keys.Length];
        for (int start = 0; start < keys.Length;)
        {
            int end = start + 1;
            while (end < keys.Length && keys[end] == keys[start])
                end++;
            // Positions start+1 .. end (1-based) share their mean.
            double rank = (start + 1 + end) / 2.0;
            for (int j = start; j < end; j++)
                ranks[order[j]] = rank;
            start = end;
        }
        return ranks;
    }

    private static double PearsonOf(double[] x, double[] y)
    {
        double meanX = 0, meanY = 0;
        for (int i = 0; i < x.Length; i++)
        {
            meanX += x[i];
            meanY += y[i];
        }
        meanX /= x.Length;
        meanY /= y.Length;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double dx = x[i] - meanX, dy = y[i] - meanY;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        if (double.IsNaN(sxy) || double.IsNaN(sxx) || double.IsNaN(syy) || double.IsInfinity(sxx)
            || double.IsInfinity(syy))
            return double.NaN;
        if (sxx == 0 || syy == 0)
            return 0.0;
        // Rounding can push |r| a hair past 1 for perfectly (anti)correlated inputs.
        return Math.Clamp(sxy / Math.Sqrt(sxx * syy), -1.0, 1.0);
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
        {
            if (!float.IsFinite(v))
                return false;
        }
        return true;
    }

    private static void CheckLengths(int predicted, int gold)
    {
        if (predicted != gold)
            throw new ArgumentException($"{predicted} predictions for {gold} gold labels");
        if (predicted == 0)
            throw new ArgumentException("no examples to score");
    }
}

/// <summary>The metrics of a GLUE task over a whole evaluation set.</summary>
public static class TaskMetrics
{
    /// <summary>
    /// Metrics of a classification task from predicted and gold class indices (into
    /// <see cref="GlueTask.Labels"/>). Keys are <see cref="GlueTask.Metrics"/>, inserted in that order.
    /// </summary>
    public static IReadOnlyDictionary<string, double> Compute(GlueTask task, ReadOnlySpan<int> predicted,
        ReadOnlySpan<int> gold)
    {
        if (task.IsRegression)
            throw new ArgumentException($"{task.Name} is a regression task: score it with float predictions");
        CheckClasses(task, predicted, "predicted");
        CheckClasses(task, gold, "gold");
        var values = new Dictionary<string, double>();
        foreach (string metric in task.Metrics)
        {
            values[metric] = metric switch
            {
                MetricNames.Accuracy => Metrics.Accuracy(predicted, gold),
                MetricNames.F1 => Metrics.F1(predicted, gold),
                MetricNames.Mcc => Metrics.MatthewsCorrelation(predicted, gold),
                _ => throw new InvalidOperationException($"{task.Name}: {metric} is not a classification metric"),
            };
        }
        return values;
    }

    /// <summary>Metrics of a regression task (STS-B) from predicted and gold scores.</summary>
    public static IReadOnlyDictionary<string, double> Compute(GlueTask task, ReadOnlySpan<float> predicted,
        ReadOnlySpan<float> gold)
    {
        if (!task.IsRegression)
            throw new ArgumentException($"{task.Name} is a classification task: score it with class indices");
        var values = new Dictionary<string, double>();
        foreach (string metric in task.Metrics)
        {
            values[metric] = metric switch
            {
                MetricNames.Pearson => Metrics.Pearson(predicted, gold),
                MetricNames.Spearman => Metrics.Spearman(predicted, gold),
                _ => throw new InvalidOperationException($"{task.Name}: {metric} is not a regression metric"),
            };
        }
        return values;
    }

    /// <summary>The value of the task's <see cref="GlueTask.MainMetric"/> in metrics from <c>Compute</c>.</summary>
    public static double Main(GlueTask task, IReadOnlyDictionary<string, double> metrics) => metrics[task.MainMetric];

    private static void CheckClasses(GlueTask task, ReadOnlySpan<int> classes, string what)
    {
        for (int i = 0; i < classes.Length; i++)
        {
            if ((uint)classes[i] >= (uint)task.Labels.Count)
                throw new ArgumentException(
                    $"{what} class {classes[i]} at example {i} is outside 0..{task.Labels.Count - 1} for {task.Name}");
        }
    }
}
