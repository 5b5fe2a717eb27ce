using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>One loaded model serves many threads at once, each with its own workspace (issue 3).</summary>
public sealed class EngineConcurrencyTests
{
    [Fact]
    public void EightThreadsSharingOneEngineGetTheSingleThreadResults()
    {
        const int threads = 8, requests = 200;
        // The gated model: requests with and without gates exercise the compaction state as well.
        var engine = EngineFixtures.Gated.Value;
        // Lengths 1..32 (below, between and above the m_j = 22, 12, 6, 3): enough variety, little work.
        var inputs = EngineFixtures.GatedCases().Select(c => c.Input).Where(s => s.InputIds.Length <= 32)
            .Concat(EngineFixtures.RandomSequences(engine.Config, Enumerable.Range(1, 32), seed: 9))
            .ToList();
        var plans = Enumerable.Range(0, threads).Select(t =>
        {
            var random = new Random(1000 + t);
            return Enumerable.Range(0, requests).Select(_ =>
            {
                var batch = Enumerable.Range(0, random.Next(1, 4)).Select(_ =>
                    inputs[random.Next(inputs.Count)]).ToArray();
                return (Batch: batch, Options: new RunOptions(UseGates: random.Next(4) != 0, ReturnHidden: true,
                    ReturnSurvivors: true));
            }).ToArray();
        }).ToArray();

        SequenceResult[][] RunPlan(int t)
        {
            var workspace = new InferenceWorkspace();
            return plans[t].Select(r => engine.Run(r.Batch, workspace, r.Options)).ToArray();
        }

        var expected = Enumerable.Range(0, threads).Select(RunPlan).ToArray();

        var actual = new SequenceResult[threads][][];
        var failures = new Exception?[threads];
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                actual[t] = RunPlan(t);
            }
            catch (Exception e) { failures[t] = e; }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();

        Assert.All(failures, f => Assert.Null(f));
        for (int t = 0; t < threads; t++)
            for (int r = 0; r < requests; r++)
                for (int s = 0; s < expected[t][r].Length; s++)
                    EngineFixtures.AssertSame(expected[t][r][s], actual[t][r][s],
                        $"thread {t}, request {r}, sequence {s}");
    }
}
