using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeBert.Model;

/// <summary>The arithmetic of the engine's linear layers: single precision, or int8 weights with activations
/// quantized per token at run time.</summary>
public enum Precision
{
    /// <summary>Single-precision floats.</summary>
    Fp32,
    /// <summary>int8 weights with one scale per row, activations quantized per token at run time.</summary>
    Int8,
}

/// <summary>A HuggingFace BERT config.json. Known fields are typed properties; every key of the
/// original file (known or not) is kept in <see cref="Extra"/> and written back by <see cref="Save"/>,
/// so a checkpoint this project writes carries everything the user's file had.</summary>
public sealed class BertConfig
{
    /// <summary>vocab_size: rows of the word embeddings.</summary>
    public int VocabSize { get; set; } = 30522;
    /// <summary>hidden_size: the width of every token's state.</summary>
    public int HiddenSize { get; set; } = 768;
    /// <summary>num_hidden_layers: encoder layers.</summary>
    public int NumHiddenLayers { get; set; } = 12;
    /// <summary>num_attention_heads: heads per layer, each hidden_size / heads wide.</summary>
    public int NumAttentionHeads { get; set; } = 12;
    /// <summary>intermediate_size: the feed-forward block's inner width.</summary>
    public int IntermediateSize { get; set; } = 3072;
    /// <summary>hidden_act: only the exact erf GELU ("gelu") runs.</summary>
    public string HiddenAct { get; set; } = "gelu";
    /// <summary>max_position_embeddings: the longest sequence.</summary>
    public int MaxPositionEmbeddings { get; set; } = 512;
    /// <summary>type_vocab_size: token types (2 for sentence pairs).</summary>
    public int TypeVocabSize { get; set; } = 2;
    /// <summary>layer_norm_eps: added to the variance inside LayerNorm's square root.</summary>
    public double LayerNormEps { get; set; } = 1e-12;
    /// <summary>pad_token_id.</summary>
    public int PadTokenId { get; set; }
    /// <summary>Label names by class id (id2label). HuggingFace's default is two labels LABEL_0, LABEL_1.</summary>
    public IReadOnlyList<string> Labels { get; set; } = ["LABEL_0", "LABEL_1"];
    /// <summary>"regression", "single_label_classification", "multi_label_classification" or null.</summary>
    public string? ProblemType { get; set; }
    /// <summary>The task the classifier was fine-tuned on (HF's "finetuning_task"), e.g. "SST-2", or null. It
    /// names the task when the labels have been renamed (negative, positive for SST-2's 0, 1).</summary>
    public string? FinetuningTask { get; set; }
    /// <summary>N of METHOD.md: the longest sequence the token gates are trained for (gate vector length).</summary>
    public int GatePositions { get; set; } = 128;
    /// <summary>A gate at or above this value keeps its rank position (METHOD.md point 4); stored with the
    /// gates, so a model is served at the threshold it was trained and reported at.</summary>
    public float GateThreshold { get; set; } = TokenGateEvaluator.DefaultThreshold;
    /// <summary>The precision the checkpoint was stored for (key "precision"), which the
    /// engine runs by default.</summary>
    public Precision Precision { get; set; } = Precision.Fp32;
    /// <summary>Every key of the loaded file, written back on save (known keys
    /// overwritten by the properties).</summary>
    public JsonObject Extra { get; private set; } = new();

    /// <summary>The number of classifier outputs (1 for regression).</summary>
    public int NumLabels => Labels.Count;
    /// <summary>Whether the head predicts a score rather than a label.</summary>
    public bool IsRegression => ProblemType == "regression" || NumLabels == 1;
    /// <summary>The width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Standard shapes with random weights for benchmarks and tests: base, mini (Turc et al.
    /// 4/256), tiny (2/128).</summary>
    public static BertConfig ForShape(string shape) => shape switch
    {
        "base" => new BertConfig(),
        "mini" => new BertConfig { HiddenSize = 256, NumHiddenLayers = 4, NumAttentionHeads = 4,
            IntermediateSize = 1024 },
        "tiny" => new BertConfig { HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 2,
            IntermediateSize = 512 },
        _ => throw new ArgumentException($"unknown model shape '{shape}' (base, mini or tiny)"),
    };

    /// <summary>Reads config.json; errors name the file and the key.</summary>
    public static BertConfig Load(string path)
    {
        return Parse(ModelFiles.ReadText(path, ModelFiles.MaxJsonBytes), path);
    }

    /// <summary>A key given twice is an error, as anywhere in JSON it would be ambiguous.</summary>
    static readonly JsonDocumentOptions Options = new()
    {
        AllowTrailingCommas = true,
        AllowDuplicateProperties = false,
    };

    /// <summary>Parses config.json text; <paramref name="source"/> names the file in error messages.</summary>
    public static BertConfig Parse(string json, string source)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json, documentOptions: Options); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: invalid JSON ({e.Message})"); }
        if (root is not JsonObject obj) throw new InvalidDataException($"{source}: top level is not a JSON object");

        var c = new BertConfig { Extra = obj };
        c.VocabSize = PositiveInt(obj, "vocab_size", c.VocabSize, source);
        c.HiddenSize = PositiveInt(obj, "hidden_size", c.HiddenSize, source);
        c.NumHiddenLayers = PositiveInt(obj, "num_hidden_layers", c.NumHiddenLayers, source);
        c.NumAttentionHeads = PositiveInt(obj, "num_attention_heads", c.NumAttentionHeads, source);
        c.IntermediateSize = PositiveInt(obj, "intermediate_size", c.IntermediateSize, source);
        c.MaxPositionEmbeddings = PositiveInt(obj, "max_position_embeddings", c.MaxPositionEmbeddings, source);
        c.TypeVocabSize = PositiveInt(obj, "type_vocab_size", c.TypeVocabSize, source);
        c.GatePositions = PositiveInt(obj, "gate_positions", c.GatePositions, source);
        c.PadTokenId = NonNegativeInt(obj, "pad_token_id", c.PadTokenId, source);
        c.HiddenAct = String(obj, "hidden_act", source) ?? c.HiddenAct;
        c.ProblemType = String(obj, "problem_type", source);
        c.FinetuningTask = String(obj, "finetuning_task", source);
        if (obj["layer_norm_eps"] is JsonNode epsNode)
        {
            if (!TryDouble(epsNode, out double eps) || !(eps > 0) || double.IsInfinity(eps))
                throw new InvalidDataException($"{source}: key 'layer_norm_eps' must be a positive number, "
                    + $"got {epsNode.ToJsonString()}");
            c.LayerNormEps = eps;
        }
        if (obj["gate_threshold"] is JsonNode thresholdNode)
        {
            if (!TryDouble(thresholdNode, out double t) || !(t >= 0 && t <= 1))
                throw new InvalidDataException(
                    $"{source}: key 'gate_threshold' must be a number in [0, 1], got {thresholdNode.ToJsonString()}");
            c.GateThreshold = (float)t;
        }
        c.Precision = String(obj, "precision", source) switch
        {
            null or "fp32" => Precision.Fp32,
            "int8" => Precision.Int8,
            var other => throw new InvalidDataException(
                $"{source}: key 'precision' must be \"fp32\" or \"int8\", got '{other}'"),
        };
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new InvalidDataException($"{source}: key 'hidden_size' ({c.HiddenSize}) "
                + $"is not a multiple of 'num_attention_heads' ({c.NumAttentionHeads})");
        if (c.ProblemType is not (null or "regression" or "single_label_classification"
                                  or "multi_label_classification"))
            throw new InvalidDataException($"{source}: key 'problem_type' has unknown value '{c.ProblemType}'");
        c.Labels = ParseLabels(obj, source);
        if (c.PadTokenId >= c.VocabSize)
            throw new InvalidDataException($"{source}: key 'pad_token_id' ({c.PadTokenId}) "
                + $"is not below 'vocab_size' ({c.VocabSize})");
        return c;
    }

    const int MaxNumLabels = 1 << 16;

    static IReadOnlyList<string> ParseLabels(JsonObject obj, string source)
    {
        if (obj["id2label"] is JsonNode node)
        {
            if (node is not JsonObject map)
                throw new InvalidDataException($"{source}: key 'id2label' is not an object");
            var labels = new string?[map.Count];
            foreach (var (key, value) in map)
            {
                if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int id)
                    || id >= labels.Length)
                    throw new InvalidDataException($"{source}: key 'id2label' has key '{Escaped(key)}'; "
                        + $"expected the ids 0..{labels.Length - 1}");
                if (value is not JsonValue v || !v.TryGetValue(out string? name))
                    throw new InvalidDataException($"{source}: key 'id2label' entry '{key}' is not a string");
                if (labels[id] is not null)
                    throw new InvalidDataException($"{source}: key 'id2label' has id {id} twice");
                labels[id] = name;
            }
            if (labels.Length == 0) throw new InvalidDataException($"{source}: key 'id2label' is empty");
            return labels.Select(l => l!).ToArray();
        }
        if (obj["num_labels"] is not null)
        {
            int n = PositiveInt(obj, "num_labels", 2, source);
            // Only id2label is bounded by the file's size; a bare count makes that many names here.
            if (n > MaxNumLabels)
                throw new InvalidDataException($"{source}: key 'num_labels' ({n}) is above {MaxNumLabels}; "
                    + "give id2label instead");
            return Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray();
        }
        return ["LABEL_0", "LABEL_1"];
    }

    /// <summary>A string of the file as JSON escapes it, so a message stays on one line.</summary>
    static string Escaped(string s) => JsonEncodedText.Encode(s).ToString();

    static bool TryDouble(JsonNode node, out double value)
    {
        value = 0;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out value);
    }

    static int PositiveInt(JsonObject obj, string key, int fallback, string source)
    {
        int v = NonNegativeInt(obj, key, fallback, source);
        if (v == 0) throw new InvalidDataException($"{source}: key '{key}' must be positive, got 0");
        return v;
    }

    static int NonNegativeInt(JsonObject obj, string key, int fallback, string source)
    {
        var node = obj[key];
        if (node is null) return fallback;
        if (!TryDouble(node, out double d) || d != Math.Floor(d) || d < 0 || d > int.MaxValue)
            throw new InvalidDataException($"{source}: key '{key}' must be a non-negative integer, "
                + $"got {node.ToJsonString()}");
        return (int)d;
    }

    static string? String(JsonObject obj, string key, string source)
    {
        var node = obj[key];
        if (node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
        throw new InvalidDataException($"{source}: key '{key}' must be a string, got {node.ToJsonString()}");
    }

    /// <summary>The config as JSON: every kept key, with the known fields set from the properties.</summary>
    public JsonObject ToJson()
    {
        var o = (JsonObject)Extra.DeepClone();
        o["model_type"] ??= "bert";
        o["vocab_size"] = VocabSize;
        o["hidden_size"] = HiddenSize;
        o["num_hidden_layers"] = NumHiddenLayers;
        o["num_attention_heads"] = NumAttentionHeads;
        o["intermediate_size"] = IntermediateSize;
        o["hidden_act"] = HiddenAct;
        o["max_position_embeddings"] = MaxPositionEmbeddings;
        o["type_vocab_size"] = TypeVocabSize;
        o["layer_norm_eps"] = LayerNormEps;
        o["pad_token_id"] = PadTokenId;
        o["gate_positions"] = GatePositions;
        if (Precision == Precision.Int8) o["precision"] = "int8";
        else o.Remove("precision");
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (int i = 0; i < Labels.Count; i++)
        {
            id2label[i.ToString(CultureInfo.InvariantCulture)] = Labels[i];
            label2id[Labels[i]] = i;
        }
        o["id2label"] = id2label;
        o["label2id"] = label2id;
        o.Remove("num_labels");
        if (ProblemType is null) o.Remove("problem_type");
        else o["problem_type"] = ProblemType;
        if (FinetuningTask is null) o.Remove("finetuning_task");
        else o["finetuning_task"] = FinetuningTask;
        return o;
    }

    /// <summary>Writes config.json atomically (<see cref="AtomicFile"/>).</summary>
    public void Save(string path) => WriteJson(path, ToJson());

    internal static void WriteJson(string path, JsonObject json) =>
        AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
