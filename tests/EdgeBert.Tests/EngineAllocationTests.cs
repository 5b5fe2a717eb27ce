using EdgeBert.Model;
using Xunit.Abstractions;

namespace EdgeBert.Tests;

/// <summary>Once a workspace has buffers for a batch size, running such a batch again allocates only the
/// result objects (issue 3: nothing that grows with the model or the batch's tokens).</summary>
public sealed class EngineAllocationTests(ITestOutputHelper output)
{
    /// <summary>The bound: a fixed allowance for the call (result arrays' headers, an enumerator) plus, per
    /// sequence, its SequenceResult (about 64 bytes), its logits and kept arrays (24-byte headers plus
    /// 4 bytes per label or layer) and the references to them: under 256 bytes for these tiny models,
    /// whatever the sequence's length. One hidden-state row alone is Hidden * 4 = 128 bytes per token, so a
    /// per-token or per-layer buffer would break the bound at once.</summary>
    const long FixedBytes = 512, BytesPerSequence = 256;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SteadyStateRunsAllocateOnlyTheResults(bool gated)
    {
        var engine = gated ? EngineFixtures.Gated.Value : EngineFixtures.TinyF32.Value;
        var random = new Random(3);
        int[] lengths = Enumerable.Range(0, 8).Select(_ => random.Next(12, 30)).ToArray();
        var batch = EngineFixtures.RandomSequences(engine.Config, lengths, seed: 1);
        var doubled = batch.Concat(EngineFixtures.RandomSequences(engine.Config, lengths, seed: 2)).ToList();
        var longer = EngineFixtures.RandomSequences(engine.Config, lengths.Select(n => 2 * n), seed: 3);

        var workspace = new InferenceWorkspace();
        long Allocated(List<SequenceInput> inputs)
        {
            for (int warmUp = 0; warmUp < 3; warmUp++) engine.Run(inputs, workspace);
            long before = GC.GetAllocatedBytesForCurrentThread();
            engine.Run(inputs, workspace);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Allocated(doubled);
        Allocated(longer);  // the workspace now holds buffers for every shape below
        if (gated)  // the gate evaluator and compaction run in the measured calls
            Assert.Contains(engine.Run(batch, workspace), r => r.Kept[^1] < r.Kept[0]);

        long small = Allocated(batch), large = Allocated(doubled), twiceTheTokens = Allocated(longer);
        int tokens = batch.Sum(s => s.InputIds.Length);
        output.WriteLine($"{(gated ? "gated" : "dense")}: {small} bytes for 8 sequences ({tokens} tokens), "
            + $"{large} for 16, {twiceTheTokens} for 8 sequences of twice the length");

        Assert.True(small <= FixedBytes + batch.Count * BytesPerSequence, $"{small} bytes for {batch.Count} sequences");
        Assert.True(large <= FixedBytes + doubled.Count * BytesPerSequence,
            $"{large} bytes for {doubled.Count} sequences");
        Assert.True(large - small <= batch.Count * BytesPerSequence,
            $"doubling the batch allocated {large - small} more bytes");
        // Same number of sequences, twice the tokens: not a byte more.
        Assert.Equal(small, twiceTheTokens);
        // The bound is tight enough to catch one copy of the batch's hidden states.
        Assert.True(FixedBytes + batch.Count * BytesPerSequence
            < batch.Sum(s => s.InputIds.Length) * engine.Hidden * sizeof(float));
    }
}
