using EdgeBert.Autograd;
using EdgeBert.Model;
using static EdgeBert.Tests.AutogradGradCheck;

namespace EdgeBert.Tests;

/// <summary>Every op's forward against a straightforward double implementation and its backward
/// against central finite differences of that implementation, on random shapes.</summary>
public class AutogradOpsTests
{
    /// <summary>Runs op on the inputs, back-propagates a random upstream gradient and checks the
    /// forward and every input gradient against the double reference.</summary>
    static void Check(Random random, Tensor[] inputs, Func<Tape, Tensor> op, Func<double[][], double[]> reference,
        double forwardTolerance = 1e-5)
    {
        var tape = new Tape();
        var y = op(tape);
        var upstream = RandomArray(random, y.Length);
        tape.Backward(y, upstream);
        Assert.Equal(0, tape.Count);
        var doubles = inputs.Select(t => t.Data.Select(v => (double)v).ToArray()).ToArray();
        AssertForward(reference(doubles), y.Data, forwardTolerance);
        AssertGradients(reference, inputs.Select(t => t.Data).ToArray(),
            inputs.Select(t => t.RequiresGrad ? t.Grad ?? new float[t.Length] : null).ToArray(), upstream);
    }

    static Tensor Param(Random random, params int[] shape) => Param(random, 1.0, shape);

    static Tensor Param(Random random, double amplitude, params int[] shape)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        return Tensor.Parameter("p", RandomArray(random, (int)count, amplitude), shape);
    }

    [FsCheck.Xunit.Property(MaxTest = 12)]
    public void Linear(int seed)
    {
        var random = new Random(seed);
        int rows = random.Next(1, 9), inFeatures = random.Next(1, 21), outFeatures = random.Next(1, 19);
        bool withBias = random.Next(4) != 0;
        var x = Param(random, rows, inFeatures);
        var w = Param(random, outFeatures, inFeatures);
        var b = Param(random, outFeatures);
        Tensor[] inputs = withBias ? [x, w, b] : [x, w];
        Check(random, inputs, tape => tape.Linear(x, w, withBias ? b : null), v =>
        {
            var y = new double[rows * outFeatures];
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outFeatures; o++)
                {
                    double s = withBias ? v[2][o] : 0;
                    for (int i = 0; i < inFeatures; i++) s += v[0][r * inFeatures + i] * v[1][o * inFeatures + i];
                    y[r * outFeatures + o] = s;
                }
            return y;
        });
    }

    [Fact]
    public void LinearLeavesConstantsWithoutGradient()
    {
        var random = new Random(5);
        var x = new Tensor(RandomArray(random, 6), 2, 3);
        var w = Param(random, 4, 3);
        var tape = new Tape();
        var y = tape.Linear(x, w);
        tape.Backward(y, RandomArray(random, y.Length));
        Assert.Null(x.Grad);
        Assert.NotNull(w.Grad);
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void EmbeddingGatherScatterAddsRepeatedIds(int seed)
    {
        var random = new Random(seed);
        int vocab = random.Next(1, 6), width = random.Next(1, 10), count = random.Next(1, 12);
        var ids = Enumerable.Range(0, count).Select(_ => random.Next(vocab)).ToArray();
        var table = Param(random, vocab, width);
        Check(random, [table], tape => tape.EmbeddingGather(table, ids),
            v => ids.SelectMany(id => v[0].Skip(id * width).Take(width)).ToArray());
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void SelectRows(int seed)
    {
        var random = new Random(seed);
        int rows = random.Next(1, 8), width = random.Next(1, 10);
        var picked = Enumerable.Range(0, random.Next(1, 6)).Select(_ => random.Next(rows)).ToArray();
        var x = Param(random, rows, width);
        Check(random, [x], tape => tape.SelectRows(x, picked),
            v => picked.SelectMany(r => v[0].Skip(r * width).Take(width)).ToArray());
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void AddScaleSumMean(int seed)
    {
        var random = new Random(seed);
        int rows = random.Next(1, 5), cols = random.Next(1, 20);
        var a = Param(random, rows, cols);
        var b = Param(random, rows, cols);
        float s = (float)(random.NextDouble() * 4 - 2);
        // a is used twice: its gradient must receive both contributions.
        Check(random, [a, b], tape =>
        {
            var sum = tape.Add(tape.Add(a, b), tape.Scale(a, s));
            return tape.Add(tape.Sum(sum), tape.Mean(b));
        }, v =>
        {
            double total = 0, meanB = v[1].Average();
            for (int i = 0; i < v[0].Length; i++) total += v[0][i] + v[1][i] + (double)s * v[0][i];
            return [total + meanB];
        });
    }

    [FsCheck.Xunit.Property(MaxTest = 10)]
    public void LayerNorm(int seed)
    {
        var random = new Random(seed);
        int rows = random.Next(1, 6), cols = random.Next(2, 40);
        const float eps = 1e-5f;
        var x = Param(random, 2.0, rows, cols);
        var gamma = Param(random, cols);
        var beta = Param(random, cols);
        Check(random, [x, gamma, beta], tape => tape.LayerNorm(x, gamma, beta, eps), v =>
        {
            var y = new double[rows * cols];
            for (int r = 0; r < rows; r++)
            {
                var row = v[0].Skip(r * cols).Take(cols).ToArray();
                double mean = row.Average();
                double variance = row.Select(e => (e - mean) * (e - mean)).Average();
                double inv = 1 / Math.Sqrt(variance + eps);
                for (int c = 0; c < cols; c++) y[r * cols + c] = (row[c] - mean) * inv * v[1][c] + v[2][c];
            }
            return y;
        }, forwardTolerance: 1e-4);
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void Gelu(int seed)
    {
        var random = new Random(seed);
        var x = Param(random, 3.0, random.Next(1, 4), random.Next(1, 30));
        Check(random, [x], tape => tape.Gelu(x),
            v => v[0].Select(e => 0.5 * e * (1 + Erf(e / Math.Sqrt(2)))).ToArray());
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void Tanh(int seed)
    {
        var random = new Random(seed);
        var x = Param(random, 2.5, random.Next(1, 4), random.Next(1, 30));
        Check(random, [x], tape => tape.Tanh(x), v => v[0].Select(Math.Tanh).ToArray());
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void GateScale(int seed)
    {
        var random = new Random(seed);
        int rows = random.Next(1, 9), width = random.Next(1, 20), gates = random.Next(1, 10);
        var ranks = Enumerable.Range(0, rows).Select(_ => random.Next(gates)).ToArray();
        var x = Param(random, rows, width);
        var gate = Tensor.Parameter("gate",
            Enumerable.Range(0, gates).Select(_ => (float)random.NextDouble()).ToArray(), gates);
        Check(random, [x, gate], tape => tape.GateScale(x, gate, ranks), v =>
        {
            var y = new double[rows * width];
            for (int t = 0; t < rows; t++)
                for (int c = 0; c < width; c++) y[t * width + c] = v[1][ranks[t]] * v[0][t * width + c];
            return y;
        });
    }

    [Fact]
    public void GateScaleGivesUnusedGatesZeroGradient()
    {
        var x = Tensor.Parameter("x", [1, 2, 3, 4], 2, 2);
        var gate = Tensor.Parameter("gate", [0.5f, 1f, 0.25f], 3);
        var tape = new Tape();
        var y = tape.GateScale(x, gate, [2, 0]);
        tape.Backward(y, [1, 1, 1, 1]);
        // dg[k] = sum over tokens of rank k of sum(dy * x): rank 2 is token 0 (1 + 2), rank 0 token 1 (3 + 4).
        Assert.Equal([7f, 0f, 3f], gate.Grad!);
        Assert.Equal([0.25f, 0.25f, 0.5f, 0.5f], x.Grad!);
    }

    [Fact]
    public void MaskGatedOutKeysMasksOnlyExactZeroGates()
    {
        float[] gate = [1f, 0f, 1e-7f, 0f];
        int[] ranks = [0, 2, 1, 3, 0];
        float[] mask = [0, 0, 0, 0, float.NegativeInfinity];
        GateOps.MaskGatedOutKeys(mask, gate, ranks);
        Assert.Equal([0f, 0f, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity], mask);
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void GateRegularizers(int seed)
    {
        var random = new Random(seed);
        int layers = random.Next(1, 5), n = random.Next(1, 12);
        var gates = Enumerable.Range(0, layers)
            .Select(_ => Tensor.Parameter("gate",
                Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray(), n))
            .ToArray();
        // METHOD.md point 5, written out term by term.
        Check(random, gates, tape => tape.GateL1(gates), v =>
        {
            double r = 0;
            for (int j = 0; j < layers; j++) r += (j + 1.0) / layers * (v[j].Sum() / n);
            return [r / layers];
        });
        foreach (var g in gates) g.ClearGrad();
        Check(random, gates, tape => tape.GateBimodal(gates), v =>
        {
            double r = 0;
            for (int j = 0; j < layers; j++) r += v[j].Sum(g => g * (1 - g));
            return [r / (layers * n)];
        });
    }

    /// <summary>Mean over rows of -sum_c p(b, c) log softmax(row b)[c], written out in double.</summary>
    static double[] CrossEntropyReference(double[] logits, int batch, int classes, Func<int, int, double> p)
    {
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            var row = logits.Skip(b * classes).Take(classes).ToArray();
            double logSumExp = Math.Log(row.Sum(Math.Exp));
            for (int c = 0; c < classes; c++) total -= p(b, c) * (row[c] - logSumExp);
        }
        return [total / batch];
    }

    [FsCheck.Xunit.Property(MaxTest = 10)]
    public void CrossEntropy(int seed)
    {
        var random = new Random(seed);
        int batch = random.Next(1, 7), classes = random.Next(2, 6);
        var labels = Enumerable.Range(0, batch).Select(_ => random.Next(classes)).ToArray();
        var logits = Param(random, 4.0, batch, classes);
        Check(random, [logits], tape => tape.CrossEntropy(logits, labels),
            v => CrossEntropyReference(v[0], batch, classes, (b, c) => c == labels[b] ? 1 : 0));
    }

    [FsCheck.Xunit.Property(MaxTest = 10)]
    public void CrossEntropyAgainstTargetDistributions(int seed)
    {
        var random = new Random(seed);
        int batch = random.Next(1, 7), classes = random.Next(2, 6);
        var targets = new float[batch * classes];
        for (int b = 0; b < batch; b++)
        {
            var row = Enumerable.Range(0, classes).Select(_ => random.NextDouble()).ToArray();
            for (int c = 0; c < classes; c++) targets[b * classes + c] = (float)(row[c] / row.Sum());
        }
        var logits = Param(random, 4.0, batch, classes);
        Check(random, [logits], tape => tape.CrossEntropy(logits, targets),
            v => CrossEntropyReference(v[0], batch, classes, (b, c) => targets[b * classes + c]));
    }

    [Fact]
    public void CrossEntropyRejectsTargetsThatAreNotDistributions()
    {
        var logits = Tensor.Parameter("logits", [1f, 2f, 3f, 4f], 2, 2);
        Assert.Throws<ArgumentException>(() => new Tape().CrossEntropy(logits, [0.5f, 0.6f, 0f, 1f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Tape().CrossEntropy(logits, [1.5f, -0.5f, 0f, 1f]));
        Assert.Throws<ArgumentException>(() => new Tape().CrossEntropy(logits, [1f, 0f]));
    }

    [Fact]
    public void CrossEntropyIsStableForHugeLogits()
    {
        var logits = Tensor.Parameter("logits", [1000f, 0f, -1000f, 3000f], 2, 2);
        var tape = new Tape();
        var loss = tape.CrossEntropy(logits, [1, 0]);
        tape.Backward(loss);
        // Row 0: -log softmax = 1000 + log(1 + e^-1000) = 1000; row 1: 4000. Mean 2500.
        Assert.Equal(2500f, loss.Data[0]);
        // (softmax - onehot) / 2 with softmax = [1, 0] in both rows.
        Assert.Equal([0.5f, -0.5f, -0.5f, 0.5f], logits.Grad!);
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void MeanSquaredError(int seed)
    {
        var random = new Random(seed);
        int batch = random.Next(1, 9);
        var predictions = Param(random, 3.0, batch, 1);
        var targets = RandomArray(random, batch, 3.0);
        Check(random, [predictions], tape => tape.MeanSquaredError(predictions, targets),
            v => [v[0].Select((p, i) => (p - targets[i]) * (p - targets[i])).Average()]);
    }

    [FsCheck.Xunit.Property(MaxTest = 8)]
    public void DropoutGradientFollowsItsMask(int seed)
    {
        var random = new Random(seed);
        var x = Tensor.Parameter("x", RandomArray(random, 301).Select(v => v + 2f).ToArray(), 7, 43); // no zeros
        const float p = 0.3f;
        var tape = new Tape();
        var y = tape.Dropout(x, p, new Rng((ulong)seed), training: true);
        var upstream = RandomArray(random, y.Length);
        tape.Backward(y, upstream);
        int dropped = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float mask = y.Data[i] / x.Data[i];
            if (y.Data[i] == 0) dropped++;
            else Assert.Equal(1 / (1 - p), mask, 1e-5f);
            Assert.Equal(y.Data[i] == 0 ? 0f : upstream[i] / (1 - p), x.Grad![i], 1e-5f);
        }
        // 301 Bernoulli(0.3) draws: mean 90, standard deviation 8; 5 sigma either side.
        Assert.InRange(dropped, 50, 130);
    }

    [Fact]
    public void DropoutIsSeededAndIdentityAtEvaluation()
    {
        var x = Tensor.Parameter("x", Enumerable.Range(1, 64).Select(i => (float)i).ToArray(), 8, 8);
        var tape = new Tape();
        var first = tape.Dropout(x, 0.5f, new Rng(42), training: true);
        var second = tape.Dropout(x, 0.5f, new Rng(42), training: true);
        var other = tape.Dropout(x, 0.5f, new Rng(43), training: true);
        Assert.Equal(first.Data, second.Data);
        Assert.NotEqual(first.Data, other.Data);
        Assert.Same(x, tape.Dropout(x, 0.5f, new Rng(42), training: false));
    }

    [Fact]
    public void TapeNotRecordingKeepsNoSteps()
    {
        var random = new Random(1);
        var x = Param(random, 2, 3);
        var w = Param(random, 4, 3);
        var tape = new Tape { IsRecording = false };
        var y = tape.Gelu(tape.Linear(x, w));
        Assert.Equal(0, tape.Count);
        Assert.False(y.RequiresGrad);
    }

    /// <summary>A small classifier graph: gradients of a shared input accumulate across branches.</summary>
    [FsCheck.Xunit.Property(MaxTest = 6)]
    public void CompositeGraph(int seed)
    {
        var random = new Random(seed);
        int rows = random.Next(2, 6), width = random.Next(2, 9), classes = 3;
        var x = Param(random, rows, width);
        var w = Param(random, width, width);
        var b = Param(random, width);
        var gamma = Param(random, width);
        var beta = Param(random, width);
        var head = Param(random, classes, width);
        int[] labels = [random.Next(classes), random.Next(classes)];
        int[] picked = [0, rows - 1];
        Check(random, [x, w, b, gamma, beta, head], tape =>
        {
            var hidden = tape.LayerNorm(tape.Add(x, tape.Gelu(tape.Linear(x, w, b))), gamma, beta, 1e-5f);
            var pooled = tape.Tanh(tape.SelectRows(hidden, picked));
            return tape.CrossEntropy(tape.Linear(pooled, head), labels);
        }, v =>
        {
            double loss = 0;
            foreach (var (row, label) in picked.Zip(labels))
            {
                var h = new double[width];
                for (int o = 0; o < width; o++)
                {
                    double s = v[2][o];
                    for (int i = 0; i < width; i++) s += v[0][row * width + i] * v[1][o * width + i];
                    h[o] = v[0][row * width + o] + 0.5 * s * (1 + Erf(s / Math.Sqrt(2)));
                }
                double mean = h.Average(), variance = h.Select(e => (e - mean) * (e - mean)).Average();
                var pooled = h.Select((e, c) => Math.Tanh((e - mean) / Math.Sqrt(variance + 1e-5) * v[3][c] + v[4][c]))
                    .ToArray();
                var logits = Enumerable.Range(0, classes)
                    .Select(k => Enumerable.Range(0, width).Sum(c => v[5][k * width + c] * pooled[c])).ToArray();
                loss += Math.Log(logits.Sum(Math.Exp)) - logits[label];
            }
            return [loss / picked.Length];
        }, forwardTolerance: 1e-4);
    }
}
