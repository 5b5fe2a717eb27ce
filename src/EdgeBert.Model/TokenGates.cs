namespace EdgeBert.Model;

/// <summary>The ranking and keep rule of the token gates (METHOD.md points 2 and 4), shared by the
/// inference engine (hard elimination) and the training graph (soft scaling).</summary>
public static class TokenGates
{
    public const float DefaultThreshold = 0.5f;

    /// <summary>m_j per layer: the number of gates >= threshold, forced non-increasing over layers
    /// and at least 1. A layer without a gate vector keeps everything the previous layer kept.</summary>
    public static int[] KeptCounts(IReadOnlyList<float[]?> gatesPerLayer, float threshold = DefaultThreshold)
    {
        var kept = new int[gatesPerLayer.Count];
        int previous = int.MaxValue;
        for (int j = 0; j < kept.Length; j++)
        {
            var gates = gatesPerLayer[j];
            int m = previous;
            if (gates is not null)
            {
                int count = 0;
                foreach (var g in gates) if (g >= threshold) count++;
                m = Math.Min(Math.Max(count, 1), previous);
            }
            kept[j] = previous = m;
        }
        return kept;
    }

    /// <summary>Orders positions 0..n-1 by significance, most significant first; ties keep the lower
    /// position first; [CLS] (position 0) is always rank 0. <paramref name="keys"/> is scratch of length n.</summary>
    public static void Rank(ReadOnlySpan<float> significance, Span<int> positionsByRank, Span<ulong> keys)
    {
        int n = significance.Length;
        for (int w = 0; w < n; w++)
        {
            // Significance is a sum of probabilities (>= 0), so its IEEE bits order like its values;
            // inverting them makes an ascending sort put the largest first, the position breaks ties.
            uint bits = BitConverter.SingleToUInt32Bits(Math.Max(significance[w], 0f));
            ulong rankKey = w == 0 ? 0u : uint.MaxValue - bits;
            keys[w] = (rankKey << 32) | (uint)w;
        }
        keys[..n].Sort();
        for (int r = 0; r < n; r++) positionsByRank[r] = (int)(uint)keys[r];
    }

    /// <summary>The positions a sequence keeps: its min(n, m) highest-ranked tokens, in original order.
    /// Returns the count written to <paramref name="kept"/>.</summary>
    public static int SelectKept(ReadOnlySpan<float> significance, int m, Span<int> kept, Span<ulong> keys)
    {
        int n = significance.Length;
        if (m >= n)
        {
            for (int w = 0; w < n; w++) kept[w] = w;
            return n;
        }
        Rank(significance, kept, keys);
        kept[..m].Sort();
        return m;
    }
}
