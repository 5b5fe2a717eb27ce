namespace EdgeBert.Model;

/// <summary>A weight matrix or vector as a flat row-major float array with its shape. nn.Linear weights
/// are [out, in] (y = x W^T + b).</summary>
public sealed class Param(int[] shape, float[]? data = null)
{
    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; } = shape;
    /// <summary>The values, row-major.</summary>
    public float[] Values { get; } = data ?? new float[SafeTensors.Product(shape)];
    /// <summary>The number of values.</summary>
    public long Length => SafeTensors.Product(Shape);
    /// <summary>The int8 form the checkpoint stored this matrix in (Values are its
    /// dequantized floats), or null.</summary>
    public Int8Matrix? Int8 { get; internal set; }
}

/// <summary>The parameters of one encoder layer.</summary>
public sealed class BertLayerWeights
{
    /// <summary>Self-attention projections: weight [hidden, hidden], bias [hidden].</summary>
    public required Param QueryWeight, QueryBias, KeyWeight, KeyBias, ValueWeight, ValueBias;
    /// <summary>The attention output projection and the LayerNorm after it.</summary>
    public required Param AttentionOutputWeight, AttentionOutputBias, AttentionLayerNormWeight, AttentionLayerNormBias;
    /// <summary>The feed-forward block (intermediate, output) and the LayerNorm after it.</summary>
    public required Param IntermediateWeight, IntermediateBias, OutputWeight, OutputBias, OutputLayerNormWeight,
        OutputLayerNormBias;
    /// <summary>Token gate vector g_j of METHOD.md, [gate_positions], or null for a dense model.</summary>
    public Param? Gate;
}

/// <summary>The masked-language-model head (cls.predictions.*); its decoder is tied to the word embeddings.</summary>
public sealed class BertMlmHeadWeights
{
    /// <summary>The transform dense layer, its LayerNorm, and the decoder bias [vocab].</summary>
    public required Param TransformWeight, TransformBias, TransformLayerNormWeight, TransformLayerNormBias, DecoderBias;
}

/// <summary>All parameters of BertModel / BertForSequenceClassification.</summary>
public sealed class BertWeights
{
    /// <summary>The embeddings (word, position, token type) and their LayerNorm.</summary>
    public required Param WordEmbeddings, PositionEmbeddings, TokenTypeEmbeddings, EmbeddingLayerNormWeight,
        EmbeddingLayerNormBias;
    /// <summary>The encoder layers.</summary>
    public required BertLayerWeights[] Layers;
    /// <summary>Pooler (tanh(dense(h[CLS]))); absent in a bare MLM checkpoint.</summary>
    public Param? PoolerWeight, PoolerBias;
    /// <summary>Sequence classifier [num_labels, hidden]; absent in a bare BertModel.</summary>
    public Param? ClassifierWeight, ClassifierBias;
    /// <summary>The masked-language-model head, or null.</summary>
    public BertMlmHeadWeights? MlmHead;

    /// <summary>Whether the layers carry token gates.</summary>
    public bool HasGates => Layers.Length > 0 && Layers[0].Gate is not null;

    /// <summary>Whether INT8 precision stores and runs a parameter in int8: the encoder's linear weights and
    /// the word embeddings (together nearly all of a BERT's bytes). Pooler, classifier, biases, LayerNorm and
    /// the other embeddings stay in float: they are small, and the head decides the answer.</summary>
    public static bool IsInt8(string name) => name == "bert.embeddings.word_embeddings.weight"
        || (name.StartsWith("bert.encoder.layer.", StringComparison.Ordinal)
            && name.EndsWith(".weight", StringComparison.Ordinal)
            && !name.Contains("LayerNorm", StringComparison.Ordinal));

    /// <summary>Zero-filled weights with the shapes <paramref name="c"/> asks for (LayerNorm weights 1).
    /// Callers fill them (random init, training); <paramref name="gates"/> adds gate vectors of ones.</summary>
    public static BertWeights Create(BertConfig c, bool pooler = true, bool classifier = true, bool mlmHead = false,
        bool gates = false)
    {
        // Members are initialized in the order written, which is the order of Shapes.
        using var shapes = Shapes(c, pooler, classifier, mlmHead, gates).GetEnumerator();
        Param Next()
        {
            shapes.MoveNext();
            var (name, shape) = shapes.Current;
            bool one = name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)
                || name.EndsWith(".gate", StringComparison.Ordinal);
            return new Param(shape, one ? Enumerable.Repeat(1f, shape[0]).ToArray() : null);
        }
        var w = new BertWeights
        {
            WordEmbeddings = Next(), PositionEmbeddings = Next(), TokenTypeEmbeddings = Next(),
            EmbeddingLayerNormWeight = Next(), EmbeddingLayerNormBias = Next(),
            Layers = new BertLayerWeights[c.NumHiddenLayers],
        };
        for (int j = 0; j < c.NumHiddenLayers; j++)
            w.Layers[j] = new BertLayerWeights
            {
                QueryWeight = Next(), QueryBias = Next(), KeyWeight = Next(), KeyBias = Next(),
                ValueWeight = Next(), ValueBias = Next(),
                AttentionOutputWeight = Next(), AttentionOutputBias = Next(),
                AttentionLayerNormWeight = Next(), AttentionLayerNormBias = Next(),
                IntermediateWeight = Next(), IntermediateBias = Next(), OutputWeight = Next(), OutputBias = Next(),
                OutputLayerNormWeight = Next(), OutputLayerNormBias = Next(),
                Gate = gates ? Next() : null,
            };
        if (pooler || classifier) { w.PoolerWeight = Next(); w.PoolerBias = Next(); }
        if (classifier) { w.ClassifierWeight = Next(); w.ClassifierBias = Next(); }
        if (mlmHead)
            w.MlmHead = new BertMlmHeadWeights
            {
                TransformWeight = Next(), TransformBias = Next(),
                TransformLayerNormWeight = Next(), TransformLayerNormBias = Next(),
                DecoderBias = Next(),
            };
        return w;
    }

    /// <summary>The name and shape of every parameter <see cref="Create"/> makes, in <see cref="Named"/> order,
    /// without allocating anything: a loader checks a file's shapes against these before it allocates, so a
    /// config.json asking for more than the file holds fails on its first tensor.</summary>
    public static IEnumerable<(string Name, int[] Shape)> Shapes(BertConfig c, bool pooler = true,
        bool classifier = true, bool mlmHead = false, bool gates = false)
    {
        int h = c.HiddenSize, f = c.IntermediateSize;
        const string e = "bert.embeddings.";
        yield return (e + "word_embeddings.weight", [c.VocabSize, h]);
        yield return (e + "position_embeddings.weight", [c.MaxPositionEmbeddings, h]);
        yield return (e + "token_type_embeddings.weight", [c.TypeVocabSize, h]);
        yield return (e + "LayerNorm.weight", [h]);
        yield return (e + "LayerNorm.bias", [h]);
        for (int j = 0; j < c.NumHiddenLayers; j++)
        {
            string p = $"bert.encoder.layer.{j}.";
            foreach (string part in new[] { "attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense" })
            {
                yield return (p + part + ".weight", [h, h]);
                yield return (p + part + ".bias", [h]);
            }
            yield return (p + "attention.output.LayerNorm.weight", [h]);
            yield return (p + "attention.output.LayerNorm.bias", [h]);
            yield return (p + "intermediate.dense.weight", [f, h]);
            yield return (p + "intermediate.dense.bias", [f]);
            yield return (p + "output.dense.weight", [h, f]);
            yield return (p + "output.dense.bias", [h]);
            yield return (p + "output.LayerNorm.weight", [h]);
            yield return (p + "output.LayerNorm.bias", [h]);
            if (gates) yield return (p + "gate", [c.GatePositions]);
        }
        if (pooler || classifier)
        {
            yield return ("bert.pooler.dense.weight", [h, h]);
            yield return ("bert.pooler.dense.bias", [h]);
        }
        if (classifier)
        {
            yield return ("classifier.weight", [c.NumLabels, h]);
            yield return ("classifier.bias", [c.NumLabels]);
        }
        if (mlmHead)
        {
            const string m = "cls.predictions.";
            yield return (m + "transform.dense.weight", [h, h]);
            yield return (m + "transform.dense.bias", [h]);
            yield return (m + "transform.LayerNorm.weight", [h]);
            yield return (m + "transform.LayerNorm.bias", [h]);
            yield return (m + "bias", [c.VocabSize]);
        }
    }

    /// <summary>Every parameter under its HuggingFace name as BertForSequenceClassification names it
    /// (`bert.` prefix on the encoder, `classifier.*`, `cls.predictions.*`).</summary>
    public IEnumerable<(string Name, Param Param)> Named()
    {
        const string e = "bert.embeddings.";
        yield return (e + "word_embeddings.weight", WordEmbeddings);
        yield return (e + "position_embeddings.weight", PositionEmbeddings);
        yield return (e + "token_type_embeddings.weight", TokenTypeEmbeddings);
        yield return (e + "LayerNorm.weight", EmbeddingLayerNormWeight);
        yield return (e + "LayerNorm.bias", EmbeddingLayerNormBias);
        for (int j = 0; j < Layers.Length; j++)
        {
            var l = Layers[j];
            string p = $"bert.encoder.layer.{j}.";
            yield return (p + "attention.self.query.weight", l.QueryWeight);
            yield return (p + "attention.self.query.bias", l.QueryBias);
            yield return (p + "attention.self.key.weight", l.KeyWeight);
            yield return (p + "attention.self.key.bias", l.KeyBias);
            yield return (p + "attention.self.value.weight", l.ValueWeight);
            yield return (p + "attention.self.value.bias", l.ValueBias);
            yield return (p + "attention.output.dense.weight", l.AttentionOutputWeight);
            yield return (p + "attention.output.dense.bias", l.AttentionOutputBias);
            yield return (p + "attention.output.LayerNorm.weight", l.AttentionLayerNormWeight);
            yield return (p + "attention.output.LayerNorm.bias", l.AttentionLayerNormBias);
            yield return (p + "intermediate.dense.weight", l.IntermediateWeight);
            yield return (p + "intermediate.dense.bias", l.IntermediateBias);
            yield return (p + "output.dense.weight", l.OutputWeight);
            yield return (p + "output.dense.bias", l.OutputBias);
            yield return (p + "output.LayerNorm.weight", l.OutputLayerNormWeight);
            yield return (p + "output.LayerNorm.bias", l.OutputLayerNormBias);
            if (l.Gate is not null) yield return (p + "gate", l.Gate);
        }
        if (PoolerWeight is not null) yield return ("bert.pooler.dense.weight", PoolerWeight);
        if (PoolerBias is not null) yield return ("bert.pooler.dense.bias", PoolerBias);
        if (ClassifierWeight is not null) yield return ("classifier.weight", ClassifierWeight);
        if (ClassifierBias is not null) yield return ("classifier.bias", ClassifierBias);
        if (MlmHead is { } m)
        {
            yield return ("cls.predictions.transform.dense.weight", m.TransformWeight);
            yield return ("cls.predictions.transform.dense.bias", m.TransformBias);
            yield return ("cls.predictions.transform.LayerNorm.weight", m.TransformLayerNormWeight);
            yield return ("cls.predictions.transform.LayerNorm.bias", m.TransformLayerNormBias);
            yield return ("cls.predictions.bias", m.DecoderBias);
        }
    }
}
