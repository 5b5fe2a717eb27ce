using EdgeBert.Model;

namespace EdgeBert.Tests;

public class TokenGateEvaluatorTests
{
    static int[] Kept(float[] sig, int m)
    {
        var kept = new int[sig.Length];
        int count = TokenGateEvaluator.SelectKept(sig, m, kept, new ulong[sig.Length]);
        return kept[..count];
    }

    [Fact]
    public void TiesRankTheLowerPositionFirst()
    {
        var order = new int[5];
        TokenGateEvaluator.Rank([0.1f, 2f, 1f, 2f, 1f], order, new ulong[5]);
        Assert.Equal([0, 1, 3, 2, 4], order);
    }

    [Fact]
    public void ClsIsKeptEvenWhenItReceivesTheLeastAttention()
    {
        Assert.Equal([0, 2], Kept([0f, 1f, 3f, 2f], 2));
        Assert.Equal([0], Kept([0f, 1f, 3f, 2f], 1));
    }

    [Fact]
    public void KeptTokensStayInOriginalOrder()
    {
        Assert.Equal([0, 1, 3, 4], Kept([0.5f, 0.9f, 0.1f, 5f, 4f], 4));
    }

    [Fact]
    public void SequenceShorterThanMKeepsEverything()
    {
        Assert.Equal([0, 1, 2], Kept([1f, 0f, 2f], 10));
    }

    [Fact]
    public void KeptCountsAreNonIncreasingAndAtLeastOne()
    {
        float[] G(params float[] g) => g;
        var m = TokenGateEvaluator.ComputeKeptCounts([G(1, 1, 1, 0), G(1, 1, 1, 1), G(0.5f, 0.49f, 0, 0),
            G(0, 0, 0, 0)]);
        // layer 0: 3 gates >= 0.5; layer 1: 4 but capped at 3; layer 2: 0.5 counts (>=), so 1; layer 3: none -> 1.
        Assert.Equal([3, 3, 1, 1], m);
    }

    [Fact]
    public void ThresholdIsConfigurableAndMissingGatesInheritThePreviousCount()
    {
        var m = TokenGateEvaluator.ComputeKeptCounts([null, new[] { 0.9f, 0.8f, 0.3f }, null], threshold: 0.85f);
        Assert.Equal([int.MaxValue, 1, 1], m);
    }
}

public class ReceivedAttentionTests
{
    [Fact]
    public void SignificanceIsTheAttentionReceivedFromOtherLiveQueries()
    {
        var random = new Random(51);
        foreach (var isa in Kernels.IsaSelector.Supported)
        foreach (var (n, heads) in new[] { (1, 1), (2, 3), (7, 2), (16, 12), (37, 4), (128, 2) })
        {
            var probs = Enumerable.Range(0, heads * n * n).Select(_ => random.NextSingle()).ToArray();
            var keyMask = Enumerable.Range(0, n).Select(i => i % 3 == 2 ? float.NegativeInfinity : 0f).ToArray();
            foreach (bool masked in new[] { false, true })
            {
                var received = new float[heads * n];
                for (int h = 0; h < heads; h++)
                    TokenGateEvaluator.ReceivedAttention(probs.AsSpan(h * n * n, n * n), n, received.AsSpan(h * n, n),
                        masked ? keyMask : default, isa);
                var significance = Enumerable.Repeat(float.NaN, n + 3).ToArray();
                TokenGateEvaluator.Significance(received, heads, n, significance, isa);
                for (int w = 0; w < n; w++)
                {
                    double expected = 0;
                    for (int h = 0; h < heads; h++)
                        for (int from = 0; from < n; from++)
                            if (from != w && !(masked && from % 3 == 2)) expected += probs[(h * n + from) * n + w];
                    Assert.True(Math.Abs(significance[w] - expected) <= 1e-6 * (expected + heads),
                        $"{isa} n={n} masked={masked}: sig[{w}] = {significance[w]}, expected {expected}");
                }
                Assert.True(float.IsNaN(significance[n]), "entries past n are left alone");
            }
        }
    }
}

public class FlopCounterTests
{
    [Fact]
    public void DenseCountMatchesBertBaseFigure()
    {
        // DESIGN/issue figure: BERT-base at seq 128 is 22.35 GFLOP (2 FLOP per multiply-add), encoder only.
        long macs = FlopCounter.DenseMultiplyAdds(768, 3072, 0, 12, 128) - 768L * 768;
        Assert.Equal(22.35, 2.0 * macs / 1e9, 2);
    }

    [Fact]
    public void GatedCountFollowsKeptTokens()
    {
        // hidden 2, intermediate 3, 1 label, n = 4, layer 0 keeps 2 tokens, layer 1 keeps 1.
        // layer 0 (4 tokens in): qkv 4*2*6=48, attn 2*16*2=64, out 4*4=16, ffn 2*2*2*3=24 -> 152
        // layer 1 (2 tokens in): qkv 2*2*6=24, attn 2*4*2=16, out 2*4=8, ffn 2*1*2*3=12 -> 60
        // pooler 4, classifier 2 -> 218
        Assert.Equal(218, FlopCounter.MultiplyAdds(2, 3, 1, 4, [2, 1]));
    }
}
