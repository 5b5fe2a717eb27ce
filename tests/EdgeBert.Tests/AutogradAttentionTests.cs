using EdgeBert.Autograd;
using EdgeBert.Kernels;
using static EdgeBert.Tests.AutogradGradCheck;

namespace EdgeBert.Tests;

/// <summary>Multi-head attention over a packed batch against a double implementation that runs
/// every sequence and head separately.</summary>
public class AutogradAttentionTests
{
    /// <summary>Context [T, H] from q, k, v given as (array, column offset, row stride).</summary>
    static double[] ReferenceContext(double[] q, double[] k, double[] v, int qColumn, int kColumn, int vColumn, int ld,
        int[] lengths, int heads, int hidden, float[]? keyMask)
    {
        int total = lengths.Sum(), headDim = hidden / heads;
        var context = new double[total * hidden];
        int offset = 0;
        foreach (int n in lengths)
        {
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < n; i++)
                {
                    var scores = new double[n];
                    for (int j = 0; j < n; j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < headDim; d++)
                            dot += q[(offset + i) * ld + qColumn + h * headDim + d]
                                * k[(offset + j) * ld + kColumn + h * headDim + d];
                        scores[j] = dot / Math.Sqrt(headDim) + (keyMask?[offset + j] ?? 0);
                    }
                    double max = scores.Max();
                    var weights = scores.Select(s => double.IsNegativeInfinity(s) ? 0 : Math.Exp(s - max)).ToArray();
                    double sum = weights.Sum();
                    if (sum == 0) sum = 1; // every key masked: zero probabilities and context, by the kernel's contract
                    for (int d = 0; d < headDim; d++)
                    {
                        double c = 0;
                        for (int j = 0; j < n; j++)
                            c += weights[j] / sum * v[(offset + j) * ld + vColumn + h * headDim + d];
                        context[(offset + i) * hidden + h * headDim + d] = c;
                    }
                }
            offset += n;
        }
        return context;
    }

    static float[] MaskFor(int[] lengths, params int[] maskedTokens)
    {
        var mask = new float[lengths.Sum()];
        foreach (int t in maskedTokens) mask[t] = float.NegativeInfinity;
        return mask;
    }

    [FsCheck.Xunit.Property(MaxTest = 6)]
    public void FusedQkvBackwardMatchesFiniteDifferences(int seed)
    {
        var random = new Random(seed);
        int heads = random.Next(1, 4), headDim = random.Next(1, 5), hidden = heads * headDim;
        int[] lengths = Enumerable.Range(0, random.Next(2, 4)).Select(_ => random.Next(1, 7)).ToArray();
        int total = lengths.Sum();
        // Mask one key of the first sequence (when it has another key left) and the last token of the batch.
        var masked = new List<int> { total - 1 };
        if (lengths[0] > 1) masked.Add(lengths[0] - 1);
        var keyMask = MaskFor(lengths, [.. masked]);
        var qkv = Tensor.Parameter("qkv", RandomArray(random, total * 3 * hidden, 1.5), total, 3 * hidden);
        var batch = new SequenceBatch(lengths);

        var tape = new Tape();
        var result = tape.MultiHeadAttention(qkv, batch, heads, keyMask);
        var upstream = RandomArray(random, result.Context.Length);
        tape.Backward(result.Context, upstream);

        Func<double[][], double[]> reference = x =>
            ReferenceContext(x[0], x[0], x[0], 0, hidden, 2 * hidden, 3 * hidden, lengths, heads, hidden, keyMask);
        AssertForward(reference([qkv.Data.Select(v => (double)v).ToArray()]), result.Context.Data);
        AssertGradients(reference, [qkv.Data], [qkv.Grad], upstream);

        // A masked key gets no gradient through the probabilities: its K and V columns are exactly 0.
        foreach (int t in masked)
            for (int c = hidden; c < 3 * hidden; c++) Assert.Equal(0f, qkv.Grad![t * 3 * hidden + c]);
    }

    [FsCheck.Xunit.Property(MaxTest = 6)]
    public void SeparateQkvBackwardMatchesFiniteDifferences(int seed)
    {
        var random = new Random(seed);
        int heads = random.Next(1, 4), headDim = random.Next(1, 5), hidden = heads * headDim;
        int[] lengths = Enumerable.Range(0, random.Next(2, 4)).Select(_ => random.Next(1, 6)).ToArray();
        int total = lengths.Sum();
        var q = Tensor.Parameter("q", RandomArray(random, total * hidden, 1.5), total, hidden);
        var k = Tensor.Parameter("k", RandomArray(random, total * hidden, 1.5), total, hidden);
        var v = Tensor.Parameter("v", RandomArray(random, total * hidden, 1.5), total, hidden);
        var tape = new Tape();
        var result = tape.MultiHeadAttention(q, k, v, new SequenceBatch(lengths), heads);
        var upstream = RandomArray(random, result.Context.Length);
        tape.Backward(result.Context, upstream);

        Func<double[][], double[]> reference = x =>
            ReferenceContext(x[0], x[1], x[2], 0, 0, 0, hidden, lengths, heads, hidden, null);
        AssertForward(reference([.. new[] { q, k, v }.Select(t => t.Data.Select(e => (double)e).ToArray())]),
            result.Context.Data);
        AssertGradients(reference, [q.Data, k.Data, v.Data], [q.Grad, k.Grad, v.Grad], upstream);
    }

    [Fact]
    public void ProbabilitiesAreExposedPerSequenceWithMaskedKeysAtZero()
    {
        var random = new Random(3);
        int[] lengths = [4, 2, 3];
        const int heads = 2, hidden = 4;
        var keyMask = MaskFor(lengths, 2, 7);
        var qkv = new Tensor(RandomArray(random, 9 * 3 * hidden), 9, 3 * hidden);
        var result = new Tape().MultiHeadAttention(qkv, new SequenceBatch(lengths), heads, keyMask);
        Assert.Equal(lengths.Length, result.Probabilities.Length);
        for (int s = 0; s < lengths.Length; s++)
        {
            int n = lengths[s];
            Assert.Equal(heads * n * n, result.Probabilities[s].Length);
            for (int row = 0; row < heads * n; row++)
                Assert.Equal(1.0, result.Probabilities[s].Skip(row * n).Take(n).Sum(), 5);
        }
        // Token 2 is the third key of sequence 0, token 7 the second key of sequence 2.
        for (int row = 0; row < heads * 4; row++) Assert.Equal(0f, result.Probabilities[0][row * 4 + 2]);
        for (int row = 0; row < heads * 3; row++) Assert.Equal(0f, result.Probabilities[2][row * 3 + 1]);
    }

    [Fact]
    public void ThreadedRunIsBitIdenticalToSingleThreaded()
    {
        var random = new Random(9);
        int[] lengths = [7, 3, 5, 6];
        const int heads = 4, hidden = 16;
        int total = lengths.Sum();
        var data = RandomArray(random, total * 3 * hidden);
        var upstream = RandomArray(random, total * hidden);
        (float[] context, float[] grad) Run(WorkerPool? pool)
        {
            var qkv = Tensor.Parameter("qkv", (float[])data.Clone(), total, 3 * hidden);
            var tape = new Tape(pool);
            var result = tape.MultiHeadAttention(qkv, new SequenceBatch(lengths), heads);
            tape.Backward(result.Context, upstream);
            return (result.Context.Data, qkv.Grad!);
        }
        var single = Run(null);
        using var pool = new WorkerPool(2);
        var threaded = Run(pool);
        Assert.Equal(single.context, threaded.context);
        Assert.Equal(single.grad, threaded.grad);
    }

    [Fact]
    public void RejectsMismatchedLayout()
    {
        var qkv = new Tensor(new float[5 * 12], 5, 12);
        var tape = new Tape();
        Assert.Throws<ArgumentException>(() => tape.MultiHeadAttention(qkv, new SequenceBatch([2, 2]), 2));
        Assert.Throws<ArgumentException>(() => tape.MultiHeadAttention(qkv, new SequenceBatch([2, 3]), 3));
        Assert.Throws<ArgumentException>(() =>
            tape.MultiHeadAttention(qkv, new SequenceBatch([2, 3]), 2, new float[4]));
    }
}
