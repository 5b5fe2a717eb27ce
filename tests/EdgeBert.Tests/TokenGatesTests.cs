using EdgeBert.Model;

namespace EdgeBert.Tests;

public class TokenGatesTests
{
    static int[] Kept(float[] sig, int m)
    {
        var kept = new int[sig.Length];
        int count = TokenGates.SelectKept(sig, m, kept, new ulong[sig.Length]);
        return kept[..count];
    }

    [Fact]
    public void TiesRankTheLowerPositionFirst()
    {
        var order = new int[5];
        TokenGates.Rank([0.1f, 2f, 1f, 2f, 1f], order, new ulong[5]);
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
        var m = TokenGates.KeptCounts([G(1, 1, 1, 0), G(1, 1, 1, 1), G(0.5f, 0.49f, 0, 0), G(0, 0, 0, 0)]);
        // layer 0: 3 gates >= 0.5; layer 1: 4 but capped at 3; layer 2: 0.5 counts (>=), so 1; layer 3: none -> 1.
        Assert.Equal([3, 3, 1, 1], m);
    }

    [Fact]
    public void ThresholdIsConfigurableAndMissingGatesInheritThePreviousCount()
    {
        var m = TokenGates.KeptCounts([null, new[] { 0.9f, 0.8f, 0.3f }, null], threshold: 0.85f);
        Assert.Equal([int.MaxValue, 1, 1], m);
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
