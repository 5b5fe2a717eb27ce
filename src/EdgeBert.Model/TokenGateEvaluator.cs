using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>The token gates' decision rule (METHOD.md points 2 and 4), the one home of significance,
/// ranking, kept counts and the compaction plan. The inference engine eliminates tokens with it (hard);
/// the training graph ranks tokens with it to scale them by their rank's gate (soft).</summary>
public sealed class TokenGateEvaluator
{
    /// <summary>The keep threshold when the config gives none.</summary>
    public const float DefaultThreshold = 0.5f;

    readonly int[] _keptCounts;

    /// <summary>Gates at or above this value keep their rank position.</summary>
    public float Threshold { get; }

    /// <summary>m_j per layer (see <see cref="ComputeKeptCounts"/>).</summary>
    public IReadOnlyList<int> KeptCounts => _keptCounts;

    /// <summary>The rule for the gates of each layer (null for a layer without gates) at <paramref name="threshold"/>.
    /// </summary>
    public TokenGateEvaluator(IReadOnlyList<float[]?> gatesPerLayer, float threshold = DefaultThreshold)
    {
        Threshold = threshold;
        _keptCounts = ComputeKeptCounts(gatesPerLayer, threshold);
    }

    /// <summary>The tokens layer <paramref name="layer"/>'s feed-forward block keeps of a sequence of n.</summary>
    public int KeptAt(int layer, int n) => Math.Min(n, _keptCounts[layer]);

    /// <summary>m_j per layer: the number of gates >= threshold, forced non-increasing over layers
    /// and at least 1. A layer without a gate vector keeps everything the previous layer kept.</summary>
    public static int[] ComputeKeptCounts(IReadOnlyList<float[]?> gatesPerLayer, float threshold = DefaultThreshold)
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

    /// <summary>One head's share of the significance: received[w] = sum over live queries q != w of
    /// probs[q, w], for a head's n x n attention probabilities. A query whose key mask is -inf was
    /// eliminated earlier (the hard pass has no such row), so its attention does not count.</summary>
    public static void ReceivedAttention(ReadOnlySpan<float> headProbs, int n, Span<float> received,
        ReadOnlySpan<float> keyMask = default, Isa? isa = null)
    {
        if (headProbs.Length < (long)n * n) throw new ArgumentException($"probabilities shorter than {n} x {n}");
        if (received.Length < n) throw new ArgumentException($"received shorter than {n}");
        if (!keyMask.IsEmpty && keyMask.Length < n) throw new ArgumentException($"key mask shorter than {n}");
        var sum = received[..n];
        sum.Clear();
        for (int q = 0; q < n; q++)
            if (IsLive(keyMask, q)) Elementwise.AddInPlace(sum, headProbs.Slice(q * n, n), isa);
        for (int q = 0; q < n; q++)
            if (IsLive(keyMask, q)) sum[q] -= headProbs[q * n + q];
    }

    static bool IsLive(ReadOnlySpan<float> keyMask, int q) => keyMask.IsEmpty || !float.IsNegativeInfinity(keyMask[q]);

    /// <summary>sig(w) of METHOD.md point 2: the heads' received attention [heads, n] summed in head order.</summary>
    public static void Significance(ReadOnlySpan<float> receivedPerHead, int heads, int n, Span<float> significance,
        Isa? isa = null)
    {
        var sig = significance[..n];
        sig.Clear();
        for (int h = 0; h < heads; h++) Elementwise.AddInPlace(sig, receivedPerHead.Slice(h * n, n), isa);
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

    /// <summary>Whether layer <paramref name="layer"/> removes a token from any sequence of the batch.</summary>
    public bool Eliminates(int layer, PackedTokens tokens)
    {
        for (int s = 0; s < tokens.Count; s++)
            if (KeptAt(layer, tokens.Lengths[s]) < tokens.Lengths[s]) return true;
        return false;
    }

    /// <summary>The compaction plan of layer <paramref name="layer"/>: for each sequence, its kept tokens'
    /// rows (<paramref name="keptRows"/>, in order, sequence after sequence) and their count
    /// (<paramref name="keptLengths"/>). <paramref name="receivedPerHead"/> holds, for the sequence at row
    /// offset o and length n, its [heads, n] received attention at o * heads.</summary>
    public void PlanCompaction(int layer, PackedTokens tokens, ReadOnlySpan<float> receivedPerHead, int heads,
        Span<int> keptLengths, Span<int> keptRows, Scratch scratch, Isa? isa = null)
    {
        int write = 0;
        for (int s = 0; s < tokens.Count; s++)
        {
            int n = tokens.Lengths[s], start = tokens.Offsets[s];
            var kept = keptRows.Slice(write, n);
            var sig = scratch.Significance(n);
            Significance(receivedPerHead.Slice(start * heads, heads * n), heads, n, sig, isa);
            int m = SelectKept(sig, KeptAt(layer, n), kept, scratch.Keys(n));
            for (int i = 0; i < m; i++) kept[i] += start;
            keptLengths[s] = m;
            write += m;
        }
    }

    /// <summary>Ranking scratch of one caller, grown to the longest sequence seen.</summary>
    public sealed class Scratch
    {
        float[] _significance = [];
        ulong[] _keys = [];

        /// <summary>Room for <paramref name="n"/> significance values.</summary>
        public Span<float> Significance(int n) => Grown(ref _significance, n);
        /// <summary>Room for <paramref name="n"/> sort keys.</summary>
        public Span<ulong> Keys(int n) => Grown(ref _keys, n);

        static Span<T> Grown<T>(ref T[] buffer, int n)
        {
            if (buffer.Length < n) buffer = new T[n];
            return buffer.AsSpan(0, n);
        }
    }
}
