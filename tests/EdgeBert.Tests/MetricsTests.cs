using EdgeBert.Training;
using FsCheck;
using FsCheck.Fluent;

namespace EdgeBert.Tests;

public class MetricsTests
{
    private const double Tolerance = 1e-12;

    [Fact]
    public void AccuracyCountsMatches()
    {
        // pairs (p,g): (1,1) (0,1) (1,1) (1,0) (0,0) -> 3 matches of 5 = 0.6
        Assert.Equal(0.6, Metrics.Accuracy([1, 0, 1, 1, 0], [1, 1, 1, 0, 0]), Tolerance);
    }

    [Fact]
    public void F1UsesClassOneAsPositive()
    {
        // predicted 1 1 1 0 0
        // gold      1 0 0 0 0
        // class 1: TP=1 FP=2 FN=0 -> F1 = 2*1 / (2*1 + 2 + 0) = 0.5
        // (class 0 as positive would be TP=2 FP=0 FN=2 -> 4/6, so a swapped class shows)
        Assert.Equal(0.5, Metrics.F1([1, 1, 1, 0, 0], [1, 0, 0, 0, 0]), Tolerance);
        Assert.Equal(4.0 / 6.0, Metrics.F1([1, 1, 1, 0, 0], [1, 0, 0, 0, 0], positive: 0), Tolerance);
    }

    [Fact]
    public void F1WithoutTruePositivesIsZero()
    {
        // No positives predicted and none in gold: precision and recall are 0/0 -> defined as 0.
        Assert.Equal(0.0, Metrics.F1([0, 0, 0], [0, 0, 0]));
        // Positives in gold, none predicted: recall 0/2, precision 0/0 -> 0.
        Assert.Equal(0.0, Metrics.F1([0, 0, 0], [1, 0, 1]));
        // Only wrong positive predictions: TP=0 -> 0.
        Assert.Equal(0.0, Metrics.F1([1, 1, 0], [0, 0, 1]));
    }

    [Fact]
    public void MatthewsMatchesTwoByTwoFormula()
    {
        // Confusion matrix (rows gold, columns predicted):
        //            pred 1   pred 0
        //   gold 1   TP = 3   FN = 2
        //   gold 0   FP = 1   TN = 4
        // MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))
        //     = (12 - 2) / sqrt(4 * 5 * 5 * 6) = 10 / sqrt(600) = 0.408248290463863
        int[] predicted = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
        int[] gold = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
        Assert.Equal(10.0 / Math.Sqrt(600.0), Metrics.MatthewsCorrelation(predicted, gold), Tolerance);
        Assert.Equal(0.408248290463863, 10.0 / Math.Sqrt(600.0), 1e-14);
    }

    [Fact]
    public void MatthewsPerfectAndInverted()
    {
        Assert.Equal(1.0, Metrics.MatthewsCorrelation([0, 1, 1, 0], [0, 1, 1, 0]), Tolerance);
        // TP=TN=0, FP=FN=2: (0 - 4) / sqrt(2*2*2*2) = -1
        Assert.Equal(-1.0, Metrics.MatthewsCorrelation([1, 0, 0, 1], [0, 1, 1, 0]), Tolerance);
    }

    [Fact]
    public void MatthewsThreeClassesByHand()
    {
        // gold      0 0 1 1 2 2
        // predicted 0 1 1 1 2 0
        // n=6, correct c=4 (positions 0,2,3,4)
        // gold counts t = (2,2,2), predicted counts p = (2,3,1)
        // sum p*t = 4+6+2 = 12; sum p^2 = 4+9+1 = 14; sum t^2 = 12
        // MCC = (c*n - sum p*t) / sqrt((n^2 - sum p^2)(n^2 - sum t^2)) = (24-12)/sqrt(22*24) = 12/sqrt(528)
        Assert.Equal(12.0 / Math.Sqrt(528.0), Metrics.MatthewsCorrelation([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]),
            Tolerance);
    }

    [Fact]
    public void MatthewsDegenerateCasesAreZero()
    {
        // Gold holds one class only (as when a dev slice is all "acceptable"): zero variance -> 0.
        Assert.Equal(0.0, Metrics.MatthewsCorrelation([1, 0, 1], [1, 1, 1]));
        // Constant predictions (a collapsed classifier): 0, not NaN.
        Assert.Equal(0.0, Metrics.MatthewsCorrelation([1, 1, 1, 1], [0, 1, 0, 1]));
        // Both constant and equal: still 0, though accuracy is 1.
        Assert.Equal(0.0, Metrics.MatthewsCorrelation([0, 0], [0, 0]));
    }

    [Fact]
    public void PearsonByHand()
    {
        // x = 1 2 3 4 (mean 2.5), y = 2 4 5 9 (mean 5)
        // dx = -1.5 -0.5 0.5 1.5, dy = -3 -1 0 4
        // sum dx*dy = 4.5 + 0.5 + 0 + 6 = 11; sum dx^2 = 5; sum dy^2 = 26
        // r = 11 / sqrt(5 * 26) = 11 / sqrt(130)
        Assert.Equal(11.0 / Math.Sqrt(130.0), Metrics.Pearson([1, 2, 3, 4], [2, 4, 5, 9]), Tolerance);
        Assert.Equal(-11.0 / Math.Sqrt(130.0), Metrics.Pearson([1, 2, 3, 4], [-2, -4, -5, -9]), Tolerance);
    }

    [Fact]
    public void PearsonOfConstantIsZeroAndOfNaNIsNaN()
    {
        Assert.Equal(0.0, Metrics.Pearson([3, 3, 3], [1, 2, 3]));
        Assert.Equal(0.0, Metrics.Pearson([1, 2, 3], [3, 3, 3]));
        Assert.True(double.IsNaN(Metrics.Pearson([1, float.NaN, 3], [1, 2, 3])));
        Assert.True(double.IsNaN(Metrics.Pearson([1, float.PositiveInfinity, 3], [1, 2, 3])));
    }

    [Fact]
    public void AverageRanksShareTies()
    {
        // sorted: 1.0 (position 1), 2.0 (position 2), 3.0 x3 (positions 3,4,5 -> mean 4)
        Assert.Equal([4.0, 1.0, 4.0, 2.0, 4.0], Metrics.AverageRanks([3f, 1f, 3f, 2f, 3f]));
    }

    [Fact]
    public void SpearmanWithTiesByHand()
    {
        // x = 1 2 2 3     -> ranks 1 2.5 2.5 4
        // y = 10 20 30 20 -> ranks 1 2.5 4 2.5
        // both rank means 2.5: dx = -1.5 0 0 1.5, dy = -1.5 0 1.5 0
        // sum dx*dy = 2.25, sum dx^2 = sum dy^2 = 4.5 -> rho = 2.25 / 4.5 = 0.5
        // (the no-ties shortcut 1 - 6*sum d^2 / (n(n^2-1)) = 1 - 6*4.5/60 = 0.55 would be wrong here)
        Assert.Equal(0.5, Metrics.Spearman([1, 2, 2, 3], [10, 20, 30, 20]), Tolerance);
    }

    [Fact]
    public void SpearmanIsOneForMonotoneAndZeroForConstant()
    {
        Assert.Equal(1.0, Metrics.Spearman([1, 2, 3, 4], [1, 8, 27, 64]), Tolerance);
        Assert.Equal(-1.0, Metrics.Spearman([1, 2, 3, 4], [5, 1, 0, -7]), Tolerance);
        Assert.Equal(0.0, Metrics.Spearman([2, 2, 2, 2], [1, 8, 27, 64]));
        Assert.True(double.IsNaN(Metrics.Spearman([1, float.NaN, 3], [1, 2, 3])));
    }

    [Fact]
    public void MismatchedOrEmptyInputsThrow()
    {
        Assert.Throws<ArgumentException>(() => Metrics.Accuracy([1, 0], [1]));
        Assert.Throws<ArgumentException>(() => Metrics.F1([], []));
        Assert.Throws<ArgumentException>(() => Metrics.MatthewsCorrelation([0, -1], [0, 1]));
        Assert.Throws<ArgumentException>(() => Metrics.Pearson([1f], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => Metrics.Spearman([], []));
    }

    // Independent reference: the textbook two-class MCC from the four cells of the confusion matrix.
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property BinaryMatthewsEqualsConfusionMatrixFormula()
    {
        var pairs = Gen.Choose(0, 1).Two().NonEmptyListOf();
        return Prop.ForAll(pairs.ToArbitrary(), list =>
        {
            int[] predicted = list.Select(p => p.Item1).ToArray();
            int[] gold = list.Select(p => p.Item2).ToArray();
            double tp = 0, tn = 0, fp = 0, fn = 0;
            for (int i = 0; i < predicted.Length; i++)
            {
                if (predicted[i] == 1 && gold[i] == 1) tp++;
                else if (predicted[i] == 0 && gold[i] == 0) tn++;
                else if (predicted[i] == 1) fp++;
                else fn++;
            }
            double denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
            double expected = denominator == 0 ? 0 : (tp * tn - fp * fn) / Math.Sqrt(denominator);
            return Math.Abs(expected - Metrics.MatthewsCorrelation(predicted, gold)) < 1e-12;
        });
    }

    // Independent reference: ranks counted in O(n^2) (rank = #smaller + (#equal + 1) / 2), then Pearson.
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property SpearmanEqualsPearsonOfQuadraticRanks()
    {
        // Few distinct values so ties are common.
        var pairs = Gen.Choose(0, 5).Two().NonEmptyListOf();
        return Prop.ForAll(pairs.ToArbitrary(), list =>
        {
            float[] x = list.Select(p => (float)p.Item1).ToArray();
            float[] y = list.Select(p => (float)p.Item2).ToArray();
            double expected = ReferencePearson(QuadraticRanks(x), QuadraticRanks(y));
            return Math.Abs(expected - Metrics.Spearman(x, y)) < 1e-12;
        });
    }

    private static double[] QuadraticRanks(float[] values) =>
        values.Select(v => values.Count(w => w < v) + (values.Count(w => w == v) + 1) / 2.0).ToArray();

    private static double ReferencePearson(double[] x, double[] y)
    {
        double mx = x.Average(), my = y.Average();
        double sxy = x.Zip(y, (a, b) => (a - mx) * (b - my)).Sum();
        double sxx = x.Sum(a => (a - mx) * (a - mx)), syy = y.Sum(b => (b - my) * (b - my));
        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }
}

public class TaskMetricsTests
{
    [Fact]
    public void EachTaskReportsItsMetricsAndMainMetric()
    {
        Assert.Equal([MetricNames.Accuracy], GlueTask.Sst2.Metrics);
        Assert.Equal(MetricNames.Accuracy, GlueTask.Sst2.MainMetric);
        Assert.Equal([MetricNames.Mcc], GlueTask.Cola.Metrics);
        Assert.Equal([MetricNames.Accuracy, MetricNames.F1], GlueTask.Mrpc.Metrics);
        Assert.Equal(MetricNames.F1, GlueTask.Mrpc.MainMetric);
        Assert.Equal(MetricNames.F1, GlueTask.Qqp.MainMetric);
        Assert.Equal([MetricNames.Pearson, MetricNames.Spearman], GlueTask.StsB.Metrics);
        Assert.Equal(MetricNames.Spearman, GlueTask.StsB.MainMetric);
        foreach (var task in GlueTask.All)
            Assert.Contains(task.MainMetric, task.Metrics);
    }

    [Fact]
    public void MrpcComputesAccuracyAndF1()
    {
        // predicted 1 1 1 0 0, gold 1 0 0 0 0: accuracy 3/5; F1(class 1) = 2/(2+2+0) = 0.5
        var metrics = TaskMetrics.Compute(GlueTask.Mrpc, [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]);
        Assert.Equal(2, metrics.Count);
        Assert.Equal(0.6, metrics[MetricNames.Accuracy], 1e-12);
        Assert.Equal(0.5, metrics[MetricNames.F1], 1e-12);
        Assert.Equal(0.5, TaskMetrics.Main(GlueTask.Mrpc, metrics), 1e-12);
    }

    [Fact]
    public void ColaComputesMatthews()
    {
        // TP=1 TN=1 FP=1 FN=0: (1*1 - 1*0) / sqrt(2*1*2*1) = 0.5
        var metrics = TaskMetrics.Compute(GlueTask.Cola, [1, 1, 0], [1, 0, 0]);
        Assert.Equal(0.5, TaskMetrics.Main(GlueTask.Cola, metrics), 1e-12);
        Assert.Single(metrics);
    }

    [Fact]
    public void StsbComputesPearsonAndSpearman()
    {
        // Same numbers as the hand-worked cases in MetricsTests: r = 11/sqrt(130); y is increasing so rho = 1.
        var metrics = TaskMetrics.Compute(GlueTask.StsB, [1f, 2f, 3f, 4f], [2f, 4f, 5f, 9f]);
        Assert.Equal(11.0 / Math.Sqrt(130.0), metrics[MetricNames.Pearson], 1e-12);
        Assert.Equal(1.0, metrics[MetricNames.Spearman], 1e-12);
    }

    [Fact]
    public void WrongKindOrOutOfRangeClassesThrow()
    {
        Assert.Throws<ArgumentException>(() => TaskMetrics.Compute(GlueTask.StsB, [0, 1], [0, 1]));
        Assert.Throws<ArgumentException>(() => TaskMetrics.Compute(GlueTask.Sst2, [0f, 1f], [0f, 1f]));
        Assert.Throws<ArgumentException>(() => TaskMetrics.Compute(GlueTask.Sst2, [0, 2], [0, 1]));
        Assert.Throws<ArgumentException>(() => TaskMetrics.Compute(GlueTask.Mnli, [0, 1], [0, 3]));
    }
}
