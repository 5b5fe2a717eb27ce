using EdgeBert.Autograd;
using EdgeBert.Model;

namespace EdgeBert.Tests;

public class TrainingGraphTests
{
    static BertConfig SmallConfig(int gatePositions = 16) => new()
    {
        VocabSize = 40, HiddenSize = 16, NumHiddenLayers = 3, NumAttentionHeads = 2, IntermediateSize = 24,
        MaxPositionEmbeddings = 32, Labels = ["a", "b", "c"], GatePositions = gatePositions,
    };

    static BertWeights RandomWeights(BertConfig config, int seed, bool gates)
    {
        // Larger than HF's 0.02 so attention is far from uniform and the ranking is decisive.
        var w = WeightInit.Random(config, seed, gates: gates, std: 0.3f);
        var rng = new Random(seed + 1);
        foreach (var (name, p) in w.Named())
            if (p.Shape.Length == 1 && !name.EndsWith(".gate", StringComparison.Ordinal))
                for (int i = 0; i < p.Values.Length; i++) p.Values[i] += 0.1f * WeightInit.Gaussian(rng);
        return w;
    }

    static SequenceInput[] RandomBatch(BertConfig config, int seed, params int[] lengths)
    {
        var rng = new Random(seed);
        return lengths.Select(n =>
        {
            var ids = Enumerable.Range(0, n).Select(_ => rng.Next(config.VocabSize)).ToArray();
            var types = Enumerable.Range(0, n).Select(i => i < n / 2 ? 0 : 1).ToArray();
            return new SequenceInput(ids, types);
        }).ToArray();
    }

    static double RelativeError(float[] actual, float[] expected) =>
        KernelCheck.RelativeErrorNorm(actual, expected.Select(v => (double)v).ToArray());

    static float[] GraphLogits(BertTrainingGraph graph, IReadOnlyList<SequenceInput> batch, bool gates)
    {
        var tape = new Tape { IsRecording = false };
        return graph.Forward(tape, batch, new TrainingForwardOptions { UseGates = gates }).Output.Data;
    }

    [Fact]
    public void DenseForwardEqualsTheInferenceEngine()
    {
        var checkpoint = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        var engine = new BertEngine(checkpoint.Config, checkpoint.Weights);
        var graph = new BertTrainingGraph(checkpoint.Config, checkpoint.Weights);
        var batch = RandomBatch(checkpoint.Config, 3, 7, 1, 30, 12);
        var expected = engine.Run(batch).SelectMany(r => r.Logits).ToArray();
        Assert.True(RelativeError(GraphLogits(graph, batch, gates: false), expected) <= 1e-5);
    }

    [Fact]
    public void SoftForwardWithZeroOneGatesEqualsTheHardCompactedForward()
    {
        var config = SmallConfig();
        var weights = RandomWeights(config, 11, gates: true);
        // Prefix gates: layer 0 keeps 9 ranks, layer 1 keeps 5, layer 2 keeps 6 (forced down to 5).
        int[] ones = [9, 5, 6];
        for (int j = 0; j < ones.Length; j++)
            for (int k = 0; k < config.GatePositions; k++) weights.Layers[j].Gate!.Values[k] = k < ones[j] ? 1f : 0f;
        var engine = new BertEngine(config, weights);
        var graph = new BertTrainingGraph(config, weights);
        var batch = RandomBatch(config, 5, 14, 3, 16, 7, 10);

        var hard = engine.Run(batch);
        Assert.Equal([9, 5, 5], hard[0].Kept);
        Assert.Equal([3, 3, 3], hard[1].Kept);
        Assert.Equal([7, 5, 5], hard[3].Kept);
        var soft = GraphLogits(graph, batch, gates: true);
        Assert.True(RelativeError(soft, hard.SelectMany(r => r.Logits).ToArray()) <= 1e-5);
        // The gates matter: dense logits differ.
        var dense = engine.Run(batch, new RunOptions(UseGates: false)).SelectMany(r => r.Logits).ToArray();
        Assert.True(RelativeError(dense, soft) > 1e-3);
    }

    [Fact]
    public void WholeModelLossGradientMatchesFiniteDifferences()
    {
        var config = SmallConfig();
        var weights = RandomWeights(config, 21, gates: true);
        var gateRng = new Random(4);
        foreach (var layer in weights.Layers)
            for (int k = 0; k < config.GatePositions; k++)
                layer.Gate!.Values[k] = 0.2f + 0.6f * (float)gateRng.NextDouble();
        var graph = new BertTrainingGraph(config, weights);
        var batch = RandomBatch(config, 8, 9, 4, 12);
        int[] labels = [2, 0, 1];
        const float lambda = 0.3f, mu = 0.2f;

        // Ranks are constants of the forward pass (METHOD.md point 7): the loss is differentiable only
        // while a perturbation leaves every rank in place, so entries whose step flips a rank are skipped.
        (double Loss, IReadOnlyList<int[]> Ranks) Evaluate()
        {
            var tape = new Tape { IsRecording = false };
            var result = graph.Forward(tape, batch, new TrainingForwardOptions { UseGates = true });
            return (graph.Loss(tape, result.Output, labels, null, lambda, mu).Data[0], result.Ranks);
        }
        static bool SameRanks(IReadOnlyList<int[]> a, IReadOnlyList<int[]> b) =>
            a.Zip(b).All(p => p.First.SequenceEqual(p.Second));

        var recording = new Tape();
        var forward = graph.Forward(recording, batch, new TrainingForwardOptions { UseGates = true });
        var baseRanks = forward.Ranks;
        recording.Backward(graph.Loss(recording, forward.Output, labels, null, lambda, mu));

        var rng = new Random(9);
        int checkedCount = 0;
        foreach (var (name, tensor) in graph.Parameters)
        {
            // A few entries of every parameter, chosen where the gradient is large enough for a float32 difference.
            var grad = tensor.Grad;
            if (grad is null) continue;
            for (int trial = 0; trial < 3; trial++)
            {
                int i = rng.Next(tensor.Length);
                if (Math.Abs(grad[i]) < 1e-2) continue;
                float original = tensor.Data[i];
                const float h = 2e-3f;
                tensor.Data[i] = original + h; var (plus, plusRanks) = Evaluate();
                tensor.Data[i] = original - h; var (minus, minusRanks) = Evaluate();
                tensor.Data[i] = original;
                if (!SameRanks(plusRanks, baseRanks) || !SameRanks(minusRanks, baseRanks)) continue;
                double numeric = (plus - minus) / (2 * h);
                // The forward pass is float32: a loss near 1 carries rounding of about 1e-7, which the
                // difference quotient turns into up to ~5e-5 of absolute noise; beyond that, 1e-3 relative.
                double error = Math.Abs(numeric - grad[i]);
                Assert.True(error <= 1e-3 * Math.Abs(numeric) + 1e-4,
                    $"{name}[{i}]: analytic {grad[i]}, numeric {numeric}, relative error {error}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 40, $"only {checkedCount} entries had a usable gradient");
    }
}
