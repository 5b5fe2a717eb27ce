using EdgeBert.Kernels;

using EdgeBert.Autograd;

namespace EdgeBert.Model;

/// <summary>The token gates of METHOD.md: soft per-token scaling by a gate indexed by rank (point 3),
/// the key masking of gated-out tokens (point 8) and the two regularizers (point 5).
/// Ranks are constants of the forward pass, the sort is not differentiated (point 7).</summary>
public static class GateOps
{
    /// <summary>The gates' projection after each optimizer step: every value clipped to [0, 1] (METHOD.md point 1),
    /// and rank 0's gate held at 1. Rank 0 is [CLS], which inference always keeps (point 4): a gate that cannot
    /// remove its token must not scale it either, or the soft pass computes what the hard one never does.</summary>
    public static void ProjectGates(Span<float> gate)
    {
        for (int i = 0; i < gate.Length; i++) gate[i] = Math.Clamp(gate[i], 0f, 1f);
        if (gate.Length > 0) gate[0] = 1f;
    }

    /// <summary>y_t = gate[ranks[t]] * x_t for every token row t of x [T, H]; gradients flow to x
    /// and to the gate entries that were used.</summary>
    public static Tensor GateScale(this Tape tape, Tensor x, Tensor gate, int[] ranks)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(ranks);
        int rows = x.Rows, width = x.Cols;
        if (ranks.Length != rows) throw new ArgumentException($"{ranks.Length} ranks for {rows} tokens");
        foreach (int r in ranks)
            if ((uint)r >= (uint)gate.Length)
                throw new ArgumentOutOfRangeException(nameof(ranks), $"rank {r} is outside the {gate.Length} gates");
        var y = tape.NewTensor(false, x.Shape);
        for (int t = 0; t < rows; t++)
            Elementwise.Scale(x.Data.AsSpan(t * width, width), gate.Data[ranks[t]], y.Data.AsSpan(t * width, width));
        if (!tape.Tracks(x, gate)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            for (int t = 0; t < rows; t++)
            {
                var dyRow = dy.AsSpan(t * width, width);
                if (x.RequiresGrad)
                    Elementwise.Axpy(gate.Data[ranks[t]], dyRow, x.EnsureGrad().AsSpan(t * width, width));
                if (gate.RequiresGrad)
                    gate.EnsureGrad()[ranks[t]] += Elementwise.Dot(dyRow, x.Data.AsSpan(t * width, width));
            }
        });
        return y;
    }

    /// <summary>Sets keyMask[t] = -inf for every token whose gate gate[ranks[t]] is exactly 0, so the
    /// later layers treat it like padding (METHOD.md point 8). Masks already set stay set, so one
    /// mask array can be carried through the layers.</summary>
    public static void MaskGatedOutKeys(Span<float> keyMask, ReadOnlySpan<float> gate, ReadOnlySpan<int> ranks)
    {
        if (keyMask.Length != ranks.Length)
            throw new ArgumentException($"key mask has {keyMask.Length} values for {ranks.Length} ranks");
        for (int t = 0; t < ranks.Length; t++)
            if (gate[ranks[t]] == 0f) keyMask[t] = float.NegativeInfinity;
    }

    /// <summary>R_l1 = (1/L) sum_j (j+1)/L * mean_k g_j[k] over the layers' gate vectors (deeper
    /// layers pay more). A scalar [1].</summary>
    public static Tensor GateL1(this Tape tape, IReadOnlyList<Tensor> gates)
    {
        ArgumentNullException.ThrowIfNull(gates);
        int layers = gates.Count;
        double value = 0;
        for (int j = 0; j < layers; j++)
        {
            double sum = 0;
            foreach (float g in gates[j].Data) sum += g;
            value += L1Weight(j, layers, gates[j].Length) * sum;
        }
        var y = new Tensor([(float)value], 1);
        if (!gates.Any(tape.Tracks)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            for (int j = 0; j < layers; j++)
            {
                if (!gates[j].RequiresGrad) continue;
                float d = (float)(dy[0] * L1Weight(j, layers, gates[j].Length));
                var grad = gates[j].EnsureGrad();
                for (int k = 0; k < grad.Length; k++) grad[k] += d;
            }
        });
        return y;
    }

    /// <summary>R_bimodal = (1/(L N)) sum_j sum_k g_j[k] (1 - g_j[k]), zero only when every gate is
    /// 0 or 1. A scalar [1].</summary>
    public static Tensor GateBimodal(this Tape tape, IReadOnlyList<Tensor> gates)
    {
        ArgumentNullException.ThrowIfNull(gates);
        int layers = gates.Count;
        double value = 0;
        for (int j = 0; j < layers; j++)
        {
            double sum = 0;
            foreach (float g in gates[j].Data) sum += (double)g * (1.0 - g);
            value += sum / ((double)layers * gates[j].Length);
        }
        var y = new Tensor([(float)value], 1);
        if (!gates.Any(tape.Tracks)) return y;
        y.RequiresGrad = true;
        tape.Record(() =>
        {
            if (y.Grad is not { } dy) return;
            for (int j = 0; j < layers; j++)
            {
                if (!gates[j].RequiresGrad) continue;
                double scale = dy[0] / ((double)layers * gates[j].Length);
                var grad = gates[j].EnsureGrad();
                var g = gates[j].Data;
                for (int k = 0; k < grad.Length; k++) grad[k] += (float)(scale * (1.0 - 2.0 * g[k]));
            }
        });
        return y;
    }

    static double L1Weight(int layer, int layers, int gateCount) => (layer + 1) / ((double)layers * layers * gateCount);
}
