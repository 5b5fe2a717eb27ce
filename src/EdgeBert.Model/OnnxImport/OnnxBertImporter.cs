using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace EdgeBert.Model.OnnxImport;

/// <summary>What an ONNX graph became: the inferred config, the weights under HF names, and the graph's
/// tensors that are no part of a BertModel (e.g. a classifier head).</summary>
public sealed record OnnxImport(BertConfig Config, BertWeights Weights, IReadOnlyList<string> Ignored);

/// <summary>Maps a BERT ONNX export (torch.onnx / HF / optimum) onto BertModel's parameters. Initializers with
/// HF names are taken by name; a linear layer's weight, which exports often store under a generated name and
/// transposed to [in, out], is found through the graph: its MatMul (or Gemm) feeds an Add whose other input is a
/// bias with an HF name. The config comes from the shapes and from a few constants of the graph.</summary>
public static partial class OnnxBertImporter
{
    /// <param name="graph">The parsed ONNX graph.</param>
    /// <param name="heads">num_attention_heads when the graph's attention reshapes do not show it.</param>
    public static OnnxImport Convert(OnnxGraph graph, int? heads = null)
    {
        var producers = CheckReferences(graph);
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
                if (input.Length > 0) (consumers.TryGetValue(input, out var l) ? l : consumers[input] = []).Add(node);

        var tensors = new Dictionary<string, (float[] Values, int[] Shape, string Source)>(StringComparer.Ordinal);
        void Add(string name, float[] values, int[] shape, string source)
        {
            if (tensors.TryGetValue(name, out var had) && had.Source != source)
                throw new InvalidDataException($"'{name}' is given twice: by {had.Source} and by {source}");
            tensors[name] = (values, shape, source);
        }
        foreach (var (name, t) in graph.Initializers)
            if (BertCheckpoint.Canonical(name) is { } hf
                && !hf.EndsWith(BertCheckpoint.ScaleSuffix, StringComparison.Ordinal)
                && t.DataType is OnnxTensor.Float or OnnxTensor.Double)
                Add(hf, t.Floats(), Shape(t), $"initializer '{name}'");

        var queryAdds = new Dictionary<int, OnnxNode>();
        foreach (var node in graph.Nodes)
        {
            if (node.OpType is not ("MatMul" or "Gemm")) continue;
            var linear = Linear(graph, node, producers, consumers);
            if (linear is null) continue;
            var (weightName, values, shape, biasAdd, storedName) = linear.Value;
            // A named export's MatMul reads its HF-named weight through a Transpose: the same tensor again.
            if (!(tensors.TryGetValue(weightName, out var byName) && byName.Source == $"initializer '{storedName}'"
                  && byName.Shape.AsSpan().SequenceEqual(shape)))
                Add(weightName, values, shape, node.Label);
            var layer = QueryWeight().Match(weightName);
            if (layer.Success && biasAdd is not null) queryAdds[int.Parse(layer.Groups[1].ValueSpan)] = biasAdd;
        }

        var config = InferConfig(graph, tensors.ToDictionary(t => t.Key, t => t.Value.Shape), producers);
        config.NumAttentionHeads = Heads(graph, config.HiddenSize, queryAdds, consumers, producers, heads);
        bool pooler = tensors.ContainsKey("bert.pooler.dense.weight");
        var weights = BertWeights.Create(config, pooler, classifier: false);
        foreach (var (name, param) in weights.Named())
        {
            if (!tensors.Remove(name, out var t))
                throw new InvalidDataException($"the graph has no tensor for '{name}' (neither an initializer of "
                    + "that name nor a linear layer whose bias Add names it)");
            if (!t.Shape.AsSpan().SequenceEqual(param.Shape))
                throw new InvalidDataException($"{t.Source} gives '{name}' the shape [{string.Join(", ", t.Shape)}], "
                    + $"expected [{string.Join(", ", param.Shape)}]");
            t.Values.CopyTo(param.Values, 0);
        }
        return new OnnxImport(config, weights, tensors.Keys.Order(StringComparer.Ordinal).ToArray());
    }

    /// <summary>Every value a node reads must come from somewhere; returns the producer of each node output.
    /// </summary>
    static Dictionary<string, OnnxNode> CheckReferences(OnnxGraph graph)
    {
        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
            foreach (var output in node.Outputs)
                producers[output] = node;
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
                if (input.Length > 0 && !producers.ContainsKey(input) && !graph.Initializers.ContainsKey(input)
                    && !graph.Inputs.Contains(input))
                    throw new InvalidDataException(
                        $"{node.Label} reads '{input}', which no node, graph input or initializer provides");
        return producers;
    }

    /// <summary>A MatMul or Gemm with a stored weight: its HF weight name (from the bias), the weight as
    /// nn.Linear's [out, in], the Add that adds the bias (null for Gemm) and the stored tensor's name. Null for
    /// a product of two activations (attention scores and context).</summary>
    static (string Name, float[] Values, int[] Shape, OnnxNode? BiasAdd, string Stored)? Linear(OnnxGraph graph,
        OnnxNode node, Dictionary<string, OnnxNode> producers, Dictionary<string, List<OnnxNode>> consumers)
    {
        bool gemm = node.OpType == "Gemm";
        if (node.Inputs.Count < 2)
            throw new InvalidDataException($"{node.Label} has {node.Inputs.Count} inputs, expected 2 or more");
        // y = x B with B [in, out]; Gemm's transB = 1, or a Transpose node before B, means B is stored [out, in].
        bool outIn = gemm && Attr(node, "transB")?.I == 1;
        string weight = node.Inputs[1];
        // Other permutations are the attention's (k transposed for q k^T): that product has no stored weight.
        while (producers.TryGetValue(weight, out var p) && p.OpType == "Transpose"
               && Attr(p, "perm")?.Ints is null or [] or [1, 0])
        {
            outIn = !outIn;
            weight = p.Inputs[0];
        }
        var stored = ConstantTensor(graph, producers, weight);

        OnnxNode? biasAdd = null;
        string? biasName = null;
        if (gemm)
        {
            if (Attr(node, "transA")?.I is > 0 || Attr(node, "alpha") is { F: not 1f }
                || Attr(node, "beta") is { F: not 1f })
                throw new InvalidDataException(
                    $"{node.Label} uses transA, alpha or beta, which a linear layer does not");
            if (node.Inputs.Count > 2) biasName = node.Inputs[2];
        }
        else if (consumers.TryGetValue(node.Outputs[0], out var readers))
        {
            foreach (var r in readers.Where(r => r.OpType == "Add"))
            {
                string other = r.Inputs[0] == node.Outputs[0] ? r.Inputs[1] : r.Inputs[0];
                if (BiasName(graph, other) is null) continue;
                biasAdd = r;
                biasName = other;
            }
        }
        string? hfBias = biasName is null ? null : BiasName(graph, biasName);
        if (stored is null && hfBias is null) return null;
        if (stored is null)
            throw new InvalidDataException($"{node.Label} adds bias '{biasName}' but its weight '{weight}' is "
                + "computed in the graph, not stored (quantized or otherwise transformed graphs are not supported)");
        if (hfBias is null)
            throw new InvalidDataException($"{node.Label} multiplies by the stored weight '{weight}' but feeds no "
                + "Add with an HF-named bias (e.g. 'encoder.layer.0.attention.self.query.bias'), "
                + "so its layer is unknown");
        if (stored.Dims.Length != 2)
            throw new InvalidDataException(
                $"{node.Label}: weight '{weight}' has shape [{string.Join(", ", stored.Dims)}], expected a matrix");
        float[] values = stored.Floats();
        int rows = (int)stored.Dims[0], cols = (int)stored.Dims[1];
        if (outIn) return (hfBias[..^5] + ".weight", values, [rows, cols], biasAdd, weight);
        var transposed = new float[values.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                transposed[(long)j * rows + i] = values[(long)i * cols + j];
        return (hfBias[..^5] + ".weight", transposed, [cols, rows], biasAdd, weight);
    }

    /// <summary>The HF name of a bias initializer (e.g. bert.encoder.layer.0.output.dense.bias), else null.</summary>
    static string? BiasName(OnnxGraph graph, string name) =>
        graph.Initializers.ContainsKey(name) && BertCheckpoint.Canonical(name) is { } hf
            && hf.EndsWith(".bias", StringComparison.Ordinal) && !hf.Contains("LayerNorm", StringComparison.Ordinal)
            ? hf : null;

    static OnnxAttribute? Attr(OnnxNode node, string name) => node.Attributes.GetValueOrDefault(name);

    /// <summary>An initializer, or the value of a Constant node.</summary>
    static OnnxTensor? ConstantTensor(OnnxGraph graph, Dictionary<string, OnnxNode> producers, string name) =>
        graph.Initializers.TryGetValue(name, out var t) ? t
        : producers.TryGetValue(name, out var p) && p.OpType == "Constant" ? Attr(p, "value")?.T : null;

    /// <summary>The integers of a constant, looking through the Unsqueeze, Squeeze, Cast and Identity nodes that
    /// exports put around shape constants; null if the value is computed.</summary>
    static long[]? ConstantInts(OnnxGraph graph, Dictionary<string, OnnxNode> producers, string name)
    {
        if (ConstantTensor(graph, producers, name) is { DataType: OnnxTensor.Int64 or OnnxTensor.Int32 } t)
            return t.Ints();
        return producers.TryGetValue(name, out var p) && p.OpType is "Unsqueeze" or "Squeeze" or "Cast" or "Identity"
            ? ConstantInts(graph, producers, p.Inputs[0]) : null;
    }

    static int[] Shape(OnnxTensor t) => t.Dims.Select(d => checked((int)d)).ToArray();

    static BertConfig InferConfig(OnnxGraph graph, Dictionary<string, int[]> shapes,
        Dictionary<string, OnnxNode> producers)
    {
        int[] Of(string name) => shapes.TryGetValue(name, out var s) ? s
            : throw new InvalidDataException($"the graph has no tensor for '{name}'");
        var word = Of("bert.embeddings.word_embeddings.weight");
        if (word.Length != 2) throw new InvalidDataException("the word embeddings are not a matrix");
        int layers = shapes.Keys.Select(k => LayerIndex().Match(k)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[1].ValueSpan) + 1).DefaultIfEmpty(0).Max();
        if (layers == 0) throw new InvalidDataException("the graph has no tensor named encoder.layer.N.*");
        if (!graph.Nodes.Any(n => n.OpType == "Erf"))
            throw new InvalidDataException("the graph has no Erf node: its activation is not the exact GELU "
                + "(hidden_act 'gelu'), the only one the engine runs");
        return new BertConfig
        {
            VocabSize = word[0],
            HiddenSize = word[1],
            NumHiddenLayers = layers,
            IntermediateSize = Of("bert.encoder.layer.0.intermediate.dense.bias")[0],
            MaxPositionEmbeddings = Of("bert.embeddings.position_embeddings.weight")[0],
            TypeVocabSize = Of("bert.embeddings.token_type_embeddings.weight")[0],
            HiddenAct = "gelu",
            LayerNormEps = Epsilon(graph, producers),
        };
    }

    /// <summary>The LayerNorm epsilon: LayerNormalization's attribute, or the constant a decomposed LayerNorm
    /// adds to the variance before Sqrt. Stored as float32 in the graph; printed back as the shortest decimal
    /// (1e-12, not 9.99999996e-13).</summary>
    static double Epsilon(OnnxGraph graph, Dictionary<string, OnnxNode> producers)
    {
        var found = new HashSet<float>();
        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "LayerNormalization") found.Add(Attr(node, "epsilon")?.F ?? 1e-5f);
            else if (node.OpType == "Sqrt" && producers.TryGetValue(node.Inputs[0], out var add) && add.OpType == "Add")
                foreach (var input in add.Inputs)
                    if (ConstantTensor(graph, producers, input) is { Count: 1 } c
                        && c.DataType is OnnxTensor.Float or OnnxTensor.Double)
                        found.Add(c.Floats()[0]);
        }
        if (found.Count != 1)
            throw new InvalidDataException(found.Count == 0
                ? "the graph has no LayerNormalization node nor a decomposed LayerNorm (Add epsilon, Sqrt)"
                : $"the LayerNorms use different epsilons: {string.Join(", ", found)}");
        return double.Parse(found.First().ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    /// <summary>num_attention_heads from the Reshape that splits a query projection into [batch, seq, heads,
    /// head_dim]: its shape is a constant, or a Concat of pieces of which the last two are constants.</summary>
    static int Heads(OnnxGraph graph, int hidden, Dictionary<int, OnnxNode> queryAdds,
        Dictionary<string, List<OnnxNode>> consumers, Dictionary<string, OnnxNode> producers, int? given)
    {
        int? found = null;
        foreach (var add in queryAdds.Values)
            foreach (var reshape in consumers.GetValueOrDefault(add.Outputs[0], []).Where(n => n.OpType == "Reshape"))
            {
                long?[] dims = ConstantInts(graph, producers, reshape.Inputs[1]) is { } all
                    ? all.Select(d => (long?)d).ToArray()
                    : producers.TryGetValue(reshape.Inputs[1], out var concat) && concat.OpType == "Concat"
                        ? concat.Inputs.Select(i => ConstantInts(graph, producers, i) is [var d] ? (long?)d : null)
                            .ToArray()
                        : [];
                if (dims.Length != 4) continue;
                long? h = dims[2] > 0 && hidden % dims[2] == 0 && (dims[3] is null or -1 || dims[2] * dims[3] == hidden)
                    ? dims[2] : dims[3] > 0 && hidden % dims[3] == 0 ? hidden / dims[3] : null;
                if (h is null) continue;
                if (found is not null && found != h)
                    throw new InvalidDataException(
                        $"{reshape.Label} splits into {h} heads, another Reshape into {found}");
                found = (int)h;
            }
        if (given is { } g && found is { } f && g != f)
            throw new InvalidDataException($"--heads {g} disagrees with the graph, whose attention has {f} heads");
        return given ?? found ?? throw new InvalidDataException(
            "the number of attention heads is not recoverable from the graph's Reshape constants: give --heads");
    }

    [GeneratedRegex(@"^bert\.encoder\.layer\.(\d+)\.")]
    private static partial Regex LayerIndex();

    [GeneratedRegex(@"^bert\.encoder\.layer\.(\d+)\.attention\.self\.query\.weight$")]
    private static partial Regex QueryWeight();
}
