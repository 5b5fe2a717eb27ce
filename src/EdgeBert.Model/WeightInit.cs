namespace EdgeBert.Model;

/// <summary>HuggingFace's BERT initialisation: weight matrices and embeddings from N(0, std^2)
/// (initializer_range, 0.02), biases 0, LayerNorm weight 1 and bias 0, gates 1. Deterministic per seed.</summary>
public static class WeightInit
{
    /// <summary>Random weights for <paramref name="config"/> with the heads asked for, as HuggingFace initialises them.
    /// </summary>
    public static BertWeights Random(BertConfig config, int seed, bool classifier = true, bool mlmHead = false,
        bool gates = false, float std = 0.02f)
    {
        var w = BertWeights.Create(config, pooler: true, classifier, mlmHead, gates);
        var rng = new Random(seed);
        foreach (var (name, p) in w.Named())
        {
            bool matrix = p.Shape.Length == 2 && !name.Contains("LayerNorm", StringComparison.Ordinal);
            if (!matrix) continue;
            var data = p.Values;
            for (int i = 0; i < data.Length; i++) data[i] = std * Gaussian(rng);
        }
        return w;
    }

    /// <summary>A standard normal sample (Box-Muller).</summary>
    public static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
