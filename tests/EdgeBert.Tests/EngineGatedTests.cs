using EdgeBert.Model;
using Xunit.Abstractions;

namespace EdgeBert.Tests;

/// <summary>Hard token elimination (METHOD.md points 2-4 and 9) against the independent float64
/// reference of tools/make_fixtures.py: a 4-layer model with m_j = 22, 12, 6, 3 and inputs of
/// 1..64 tokens. The fixture only uses inputs whose kept set has a relative significance margin
/// above 1e-3, so float32 rounding cannot flip which tokens survive.</summary>
public sealed class EngineGatedTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;
    static readonly RunOptions Everything = new(ReturnHidden: true, ReturnSurvivors: true);

    [Fact]
    public void KeptCountsComeFromTheCheckpointGates()
    {
        var engine = EngineFixtures.Gated.Value;
        Assert.True(engine.HasGates);
        Assert.Equal(EngineFixtures.GateKeptCounts, engine.GateKeptCounts!);
        Assert.Equal(EngineFixtures.GateKeptCounts.Distinct().Count(), engine.Config.NumHiddenLayers);
        // Each layer's vector holds one gate of exactly 0.49999 (float32): a threshold at that value counts it too.
        var lower = BertEngine.Load(BertCheckpoint.Load(EngineFixtures.TinyBertGated),
            new EngineOptions { GateThreshold = 0.49999f });
        Assert.Equal(EngineFixtures.GateKeptCounts.Select(m => m + 1), lower.GateKeptCounts!);
        Assert.False(EngineFixtures.TinyF32.Value.HasGates);
    }

    [Fact]
    public void GatedRunsMatchTheReference()
    {
        var engine = EngineFixtures.Gated.Value;
        var cases = EngineFixtures.GatedCases();
        var m = EngineFixtures.GateKeptCounts;
        // The fixture covers sequences shorter than every m_j, shorter than some, and longer than all.
        Assert.Contains(cases, c => c.Length < m[^1]);
        Assert.Contains(cases, c => c.Length > m[^1] && c.Length < m[0]);
        Assert.Contains(cases, c => c.Length > m[0]);
        double worstLogits = 0, worstHidden = 0;
        foreach (var c in cases)
        {
            var expected = c.Gated!;
            var r = engine.Run([c.Input], Everything)[0];
            Assert.Equal(expected.Kept, r.Kept);
            Assert.Equal(expected.Survivors, r.Survivors!);
            Assert.Equal(expected.Kept![^1] * engine.Hidden, r.Hidden!.Length);
            double logits = EngineFixtures.RelativeError(r.Logits, expected.Logits);
            double hidden = EngineFixtures.RelativeError(r.Hidden, expected.Hidden);
            Assert.True(logits <= Tolerance, $"{c}: logits relative error {logits:E2}");
            Assert.True(hidden <= Tolerance, $"{c}: hidden relative error {hidden:E2}");
            worstLogits = Math.Max(worstLogits, logits);
            worstHidden = Math.Max(worstHidden, hidden);

            // Multiply-adds: the count the reference performed, which is FlopCounter's count for these kept numbers.
            var config = engine.Config;
            Assert.Equal(expected.MultiplyAdds, r.Flops);
            Assert.Equal(FlopCounter.MultiplyAdds(config.HiddenSize, config.IntermediateSize, engine.NumLabels,
                c.Length, expected.Kept), r.Flops);
            Assert.Equal(c.Dense.MultiplyAdds, r.DenseFlops);
            if (expected.Kept!.Any(k => k < c.Length))
                Assert.True(r.Flops < r.DenseFlops, $"{c}: {r.Flops} >= {r.DenseFlops}");
            else Assert.Equal(r.DenseFlops, r.Flops);
        }
        output.WriteLine($"gated: worst relative error logits {worstLogits:E2}, "
            + $"hidden {worstHidden:E2} over {cases.Count} cases");
    }

    [Fact]
    public void AGatedCheckpointRunsGatedWithoutOptions()
    {
        var engine = EngineFixtures.Gated.Value;
        var c = EngineFixtures.GatedCases().First(c => c.Length > EngineFixtures.GateKeptCounts[0]);
        Assert.Equal(c.Gated!.Kept, engine.Run([c.Input])[0].Kept);
        Assert.Equal(c.Gated.Kept, engine.Run([c.Input], new InferenceWorkspace())[0].Kept);
        Assert.Equal(c.Gated.Kept, engine.Run([c.Input], new RunOptions())[0].Kept);
    }

    [Fact]
    public void NoGatesRunsTheGatedCheckpointDense()
    {
        var engine = EngineFixtures.Gated.Value;
        foreach (var c in EngineFixtures.GatedCases())
        {
            var r = engine.Run([c.Input], Everything with { UseGates = false })[0];
            Assert.Equal(Enumerable.Repeat(c.Length, engine.Config.NumHiddenLayers), r.Kept);
            Assert.All(r.Survivors!, layer => Assert.Equal(Enumerable.Range(0, c.Length), layer));
            double logits = EngineFixtures.RelativeError(r.Logits, c.Dense.Logits);
            double hidden = EngineFixtures.RelativeError(r.Hidden, c.Dense.Hidden);
            Assert.True(logits <= Tolerance, $"{c}: logits relative error {logits:E2}");
            Assert.True(hidden <= Tolerance, $"{c}: hidden relative error {hidden:E2}");
            Assert.Equal(c.Dense.MultiplyAdds, r.Flops);
            Assert.Equal(r.Flops, r.DenseFlops);
        }
    }

    [Fact]
    public void AMixedBatchCompactsEachSequenceOnItsOwn()
    {
        // Long and short sequences side by side: the short ones lose nothing while their neighbours shrink.
        var engine = EngineFixtures.Gated.Value;
        var cases = EngineFixtures.GatedCases().OrderBy(c => c.Length % 3).ThenBy(c => -c.Length).ToList();
        var results = engine.Run(cases.Select(c => c.Input).ToArray(), Everything);
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.Equal(cases[i].Gated!.Kept, results[i].Kept);
            Assert.Equal(cases[i].Gated!.Survivors, results[i].Survivors!);
            double logits = EngineFixtures.RelativeError(results[i].Logits, cases[i].Gated!.Logits);
            Assert.True(logits <= Tolerance, $"{cases[i]}: logits relative error {logits:E2}");
        }
    }
}
