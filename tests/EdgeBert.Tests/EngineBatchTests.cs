using EdgeBert.Kernels;
using EdgeBert.Model;
using Xunit.Abstractions;

namespace EdgeBert.Tests;

/// <summary>Packed mixed-length batches, every ISA path and several thread counts give the results
/// of one-at-a-time runs.</summary>
public sealed class EngineBatchTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;
    static readonly RunOptions WithEverything = new(ReturnHidden: true, ReturnSurvivors: true);

    /// <summary>Runs <paramref name="inputs"/> in the given order, <paramref name="batchSize"/> at a time,
    /// through one reused workspace; results come back indexed like the inputs.</summary>
    static SequenceResult[] RunInBatches(BertEngine engine, IReadOnlyList<SequenceInput> inputs, int[] order,
        int batchSize, InferenceWorkspace workspace, WorkerPool? pool = null, bool useGates = true)
    {
        var results = new SequenceResult[inputs.Count];
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var indices = order[start..Math.Min(order.Length, start + batchSize)];
            var batch = engine.Run(indices.Select(i => inputs[i]).ToArray(), workspace,
                WithEverything with { UseGates = useGates }, pool);
            for (int b = 0; b < indices.Length; b++) results[indices[b]] = batch[b];
        }
        return results;
    }

    static SequenceResult[] OneAtATime(BertEngine engine, IReadOnlyList<SequenceInput> inputs, bool useGates = true) =>
        inputs.Select(s => engine.Run([s], WithEverything with { UseGates = useGates })[0]).ToArray();

    static IEnumerable<(string Name, int[] Order)> Orders(IReadOnlyList<SequenceInput> inputs)
    {
        int count = inputs.Count;
        var forward = Enumerable.Range(0, count).ToArray();
        yield return ("given", forward);
        yield return ("reversed", forward.Reverse().ToArray());
        var shuffled = forward.ToArray();
        new Random(count).Shuffle(shuffled);
        yield return ("shuffled", shuffled);
        // Longest, shortest, second longest, second shortest, ...: neighbours of very different lengths.
        var byLength = forward.OrderByDescending(i => inputs[i].InputIds.Length).ToArray();
        yield return ("zigzag", Enumerable.Range(0, count).Select(k =>
            k % 2 == 0 ? byLength[k / 2] : byLength[count - 1 - k / 2]).ToArray());
    }

    public static TheoryData<string> Models => new() { "dense", "gated" };

    static (BertEngine Engine, List<SequenceInput> Inputs) Fixture(string model) => model == "dense"
        ? (EngineFixtures.TinyF32.Value, EngineFixtures.DenseCases().Select(c => c.Input).ToList())
        : (EngineFixtures.Gated.Value, EngineFixtures.GatedCases().Select(c => c.Input).ToList());

    /// <summary>Expected bit-identical: every row of a GEMM is computed with the same k-order whatever
    /// rows surround it, attention and the gate evaluator work per sequence, LayerNorm per row.</summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void MixedLengthBatchesEqualOneAtATime(string model)
    {
        var (engine, inputs) = Fixture(model);
        var single = OneAtATime(engine, inputs);
        var workspace = new InferenceWorkspace();
        foreach (var (name, order) in Orders(inputs))
            for (int batchSize = 1; batchSize <= inputs.Count; batchSize++)
            {
                var batched = RunInBatches(engine, inputs, order, batchSize, workspace);
                for (int i = 0; i < inputs.Count; i++)
                    EngineFixtures.AssertSame(single[i], batched[i],
                        $"{model}, {name} order, batch size {batchSize}, input {i}");
            }
    }

    [Fact]
    public void EveryLengthUpToTheMaximumBatchesLikeItRunsAlone()
    {
        foreach (var engine in new[] { EngineFixtures.TinyF32.Value, EngineFixtures.Gated.Value })
        {
            var inputs = EngineFixtures.RandomSequences(engine.Config,
                Enumerable.Range(1, engine.Config.MaxPositionEmbeddings), seed: 5);
            var single = OneAtATime(engine, inputs);
            var workspace = new InferenceWorkspace();
            foreach (var (name, order) in Orders(inputs).Where(o => o.Name is "shuffled" or "zigzag"))
                foreach (int batchSize in new[] { 7, inputs.Count })
                {
                    var batched = RunInBatches(engine, inputs, order, batchSize, workspace);
                    for (int i = 0; i < inputs.Count; i++)
                        EngineFixtures.AssertSame(single[i], batched[i],
                            $"{name} order, batch size {batchSize}, length {i + 1}");
                }
        }
    }

    [Fact]
    public void EveryIsaPathMatchesPyTorch()
    {
        foreach (var isa in IsaSelector.Supported)
        {
            var dense = EngineFixtures.Load(ModelTestFiles.TinyBert, isa);
            var gated = EngineFixtures.Load(EngineFixtures.TinyBertGated, isa);
            Assert.Equal(isa, dense.Isa);
            string what = IsaSelector.Name(isa);
            var denseCases = EngineFixtures.DenseCases();
            var denseBatch = dense.Run(denseCases.Select(c => c.Input).ToArray(), WithEverything);
            for (int i = 0; i < denseCases.Count; i++)
                AssertMatches(denseCases[i].Dense, denseBatch[i], $"{what}, {denseCases[i]}");

            var gatedCases = EngineFixtures.GatedCases();
            var gatedBatch = gated.Run(gatedCases.Select(c => c.Input).ToArray(), WithEverything);
            for (int i = 0; i < gatedCases.Count; i++)
                AssertMatches(gatedCases[i].Gated!, gatedBatch[i], $"{what}, {gatedCases[i]}");

            var alone = OneAtATime(gated, gatedCases.Select(c => c.Input).ToList());
            for (int i = 0; i < gatedCases.Count; i++)
                EngineFixtures.AssertSame(alone[i], gatedBatch[i], $"{what}, batch vs alone, {gatedCases[i]}");
            output.WriteLine($"{what}: matches PyTorch");
        }
    }

    static void AssertMatches(ExpectedRun expected, SequenceResult r, string what)
    {
        double logits = EngineFixtures.RelativeError(r.Logits, expected.Logits);
        double hidden = EngineFixtures.RelativeError(r.Hidden, expected.Hidden);
        Assert.True(logits <= Tolerance, $"{what}: logits relative error {logits:E2}");
        Assert.True(hidden <= Tolerance, $"{what}: hidden relative error {hidden:E2}");
        if (expected.Kept is not null) Assert.Equal(expected.Kept, r.Kept);
        if (expected.Survivors is not null) Assert.Equal(expected.Survivors, r.Survivors!);
    }

    /// <summary>More threads split GEMM columns and (sequence, head) pairs differently, never the order of
    /// a sum, so the results are bit-identical to one thread.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ThreadCountsGiveOneThreadResults(int threads)
    {
        using var pool = new WorkerPool(threads);
        foreach (var model in new[] { "dense", "gated" })
        {
            var (engine, inputs) = Fixture(model);
            var reference = RunInBatches(engine, inputs, Enumerable.Range(0, inputs.Count).ToArray(), inputs.Count,
                new InferenceWorkspace());
            var workspace = new InferenceWorkspace();
            foreach (int batchSize in new[] { 1, 4, inputs.Count })
            {
                var results = RunInBatches(engine, inputs, Enumerable.Range(0, inputs.Count).ToArray(), batchSize,
                    workspace, pool);
                for (int i = 0; i < inputs.Count; i++)
                    EngineFixtures.AssertSame(reference[i], results[i],
                        $"{model}, {threads} threads, batch size {batchSize}, input {i}");
            }
        }
    }
}
