using System.Globalization;
using System.Text.RegularExpressions;

namespace EdgeBert.Model;

/// <summary>A model directory in the HuggingFace layout: config.json, model.safetensors, vocab.txt
/// (optional for id-only use), tokenizer_config.json (optional).</summary>
public sealed partial class BertCheckpoint
{
    /// <summary>The file names of the HuggingFace layout.</summary>
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors",
                        VocabFile = "vocab.txt", TokenizerConfigFile = "tokenizer_config.json";

    /// <summary>The model's config.json.</summary>
    public BertConfig Config { get; }
    /// <summary>The parameters, in the layout the engine and the training graph read.</summary>
    public BertWeights Weights { get; }
    /// <summary>The HF-exact tokenizer, or null when the directory has no vocab.txt.</summary>
    public BertWordPieceTokenizer? Tokenizer { get; }
    /// <summary>The directory the checkpoint came from (vocab and tokenizer config are copied from
    /// it on save), or null.</summary>
    public string? SourceDirectory { get; }
    /// <summary>Tensors of the file that are not part of the model (e.g. an NSP head), for a
    /// caller that wants to warn.</summary>
    public IReadOnlyList<string> IgnoredTensors { get; }

    /// <summary>A checkpoint from its parts (e.g. freshly initialised or trained weights).</summary>
    public BertCheckpoint(BertConfig config, BertWeights weights, BertWordPieceTokenizer? tokenizer = null,
                          string? sourceDirectory = null, IReadOnlyList<string>? ignoredTensors = null)
    {
        Config = config;
        Weights = weights;
        Tokenizer = tokenizer;
        SourceDirectory = sourceDirectory;
        IgnoredTensors = ignoredTensors ?? [];
    }

    /// <summary>The tokenizer, or FileNotFoundException naming the missing vocab.txt.</summary>
    public BertWordPieceTokenizer RequireTokenizer() => Tokenizer ??
        throw new FileNotFoundException($"{Path.Combine(SourceDirectory ?? ".", VocabFile)}: "
            + "file not found (text input needs the vocabulary)");

    /// <summary>The longest token sequence the model accepts: max_position_embeddings, and the
    /// tokenizer's model_max_length when that is smaller.</summary>
    public int MaxSequenceLength => Math.Min(Config.MaxPositionEmbeddings, Tokenizer?.ModelMaxLength ?? int.MaxValue);

    /// <summary>Makes the model dense: no gate tensors, and the gate settings back at their defaults, as a
    /// config.json without gate keys loads.</summary>
    public void StripGates()
    {
        foreach (var layer in Weights.Layers) layer.Gate = null;
        var defaults = new BertConfig();
        Config.GatePositions = defaults.GatePositions;
        Config.GateThreshold = defaults.GateThreshold;
    }

    /// <summary>Loads a model directory; every file is checked, and errors are one line naming the file.</summary>
    public static BertCheckpoint Load(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{directory}: model directory not found");
        var config = BertConfig.Load(Path.Combine(directory, ConfigFile));
        string weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(weightsPath))
        {
            string hint = File.Exists(Path.Combine(directory, "pytorch_model.bin"))
                ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
            throw new FileNotFoundException($"{weightsPath}: file not found{hint}", weightsPath);
        }
        var (weights, ignored) = LoadWeights(weightsPath, config);

        BertWordPieceTokenizer? tokenizer = null;
        string vocabPath = Path.Combine(directory, VocabFile);
        if (File.Exists(vocabPath))
        {
            string tokConfig = Path.Combine(directory, TokenizerConfigFile);
            tokenizer = BertWordPieceTokenizer.Load(vocabPath, File.Exists(tokConfig) ? tokConfig : null);
            CheckVocabulary(tokenizer, config, vocabPath);
        }
        return new BertCheckpoint(config, weights, tokenizer, directory, ignored);
    }

    /// <summary>A checkpoint from any <see cref="ModelSource"/>; a directory loads as <see cref="Load(string)"/>.
    /// </summary>
    public static BertCheckpoint Load(ModelSource source)
    {
        if (source.Directory is { } directory) return Load(directory);
        var streams = new Dictionary<string, Stream?>();
        try
        {
            foreach (var file in new[] { ConfigFile, WeightsFile, VocabFile, TokenizerConfigFile })
                streams[file] = source.OpenFile(file);
            string configName = source.FileName(ConfigFile), weightsName = source.FileName(WeightsFile);
            var config = BertConfig.Parse(ModelFiles.ReadText(Required(streams, ConfigFile, configName),
                ModelFiles.MaxJsonBytes, configName), configName);
            var weightsStream = Required(streams, WeightsFile, weightsName);
            streams.Remove(WeightsFile);
            var (weights, ignored) = LoadWeights(SafeTensorsFile.Open(weightsStream, weightsName), config);
            BertWordPieceTokenizer? tokenizer = null;
            if (streams[VocabFile] is { } vocab)
            {
                string vocabName = source.FileName(VocabFile), tokName = source.FileName(TokenizerConfigFile);
                var options = streams[TokenizerConfigFile] is { } tok
                    ? BertWordPieceTokenizer.ParseOptions(ModelFiles.ReadText(tok, ModelFiles.MaxJsonBytes, tokName),
                        tokName)
                    : new BertTokenizerOptions();
                tokenizer = BertWordPieceTokenizer.FromBytes(
                    ModelFiles.ReadBytes(vocab, ModelFiles.MaxVocabBytes, vocabName), vocabName, options);
                CheckVocabulary(tokenizer, config, vocabName);
            }
            return new BertCheckpoint(config, weights, tokenizer, null, ignored);
        }
        finally
        {
            foreach (var stream in streams.Values) stream?.Dispose();
        }
    }

    static Stream Required(Dictionary<string, Stream?> streams, string file, string name) =>
        streams[file] ?? throw new FileNotFoundException($"{name}: not found", name);

    static void CheckVocabulary(BertWordPieceTokenizer tokenizer, BertConfig config, string vocabName)
    {
        if (tokenizer.VocabSize > config.VocabSize)
            throw new InvalidDataException($"{vocabName}: {tokenizer.VocabSize} tokens, "
                + $"but config.json vocab_size is {config.VocabSize}");
    }

    /// <summary>Reads the tensors of <paramref name="path"/> into the layout <paramref name="config"/> asks
    /// for, one tensor at a time straight into its final array.</summary>
    public static (BertWeights Weights, IReadOnlyList<string> Ignored) LoadWeights(string path, BertConfig config) =>
        LoadWeights(SafeTensorsFile.Open(path), config);

    /// <summary>As <see cref="LoadWeights(string, BertConfig)"/>, from an open file, which it disposes.</summary>
    static (BertWeights Weights, IReadOnlyList<string> Ignored) LoadWeights(SafeTensorsFile opened, BertConfig config)
    {
        using var file = opened;
        string path = file.Path;
        var byCanonical = new Dictionary<string, string>(StringComparer.Ordinal);
        var ignored = new List<string>();
        foreach (var name in file.Tensors.Keys)
        {
            string? canonical = Canonical(name);
            if (canonical is null) { ignored.Add(name); continue; }
            if (!byCanonical.TryAdd(canonical, name))
                throw new InvalidDataException($"{path}: tensors '{byCanonical[canonical]}' and '{name}' are the same "
                    + $"parameter '{canonical}'");
            var layer = LayerIndex().Match(canonical);
            if (layer.Success && !IsLayer(layer.Groups[1].Value, config.NumHiddenLayers))
                throw new InvalidDataException($"{path}: tensor '{name}' belongs to layer {layer.Groups[1].Value}, "
                    + $"but config.json num_hidden_layers is {config.NumHiddenLayers} (layers 0 to "
                    + $"{config.NumHiddenLayers - 1})");
        }

        bool classifier = byCanonical.ContainsKey("classifier.weight") || byCanonical.ContainsKey("classifier.bias");
        bool pooler = byCanonical.ContainsKey("bert.pooler.dense.weight")
            || byCanonical.ContainsKey("bert.pooler.dense.bias");
        bool mlm = byCanonical.Keys.Any(k => k.StartsWith("cls.predictions.", StringComparison.Ordinal));
        string? firstGate = byCanonical.Keys.FirstOrDefault(k => k.EndsWith(".gate", StringComparison.Ordinal));
        bool gates = firstGate is not null;
        // A config.json without gate_positions (e.g. written by other tools) takes N from the gates themselves.
        if (firstGate is not null && config.Extra["gate_positions"] is null
            && file.Tensors[byCanonical[firstGate]].Shape is [> 0 and var positions])
            config.GatePositions = positions;
        // Every shape config.json implies is compared with the file's before anything is allocated, so what is
        // allocated is bounded by the file: hidden_size 2^31-1 or a million layers fail on their first tensor.
        foreach (var (name, shape) in BertWeights.Shapes(config, pooler, classifier, mlm, gates))
        {
            if (!byCanonical.TryGetValue(name, out var stored))
                throw new InvalidDataException($"{path}: missing tensor '{name}', which config.json implies");
            var info = file.Tensors[stored];
            if (!info.Shape.AsSpan().SequenceEqual(shape))
                throw new InvalidDataException(
                    $"{path}: tensor '{stored}' has shape [{string.Join(", ", info.Shape)}], "
                        + $"config.json asks for [{string.Join(", ", shape)}]{ShapeHint(name, config)}");
        }
        var weights = BertWeights.Create(config, pooler, classifier, mlm, gates);

        foreach (var (name, param) in weights.Named())
        {
            string stored = byCanonical[name];
            if (file.Tensors[stored].DType == "I8") ReadInt8(file, name, stored, param, byCanonical);
            else file.ReadFloats(stored, param.Values);
            CheckValues(path, name, stored, param.Values);
            byCanonical.Remove(name);
        }
        // Tied or derived tensors that HF may store but the model does not need separately.
        foreach (var (canonical, stored) in byCanonical)
        {
            if (canonical.EndsWith(ScaleSuffix, StringComparison.Ordinal))
                throw new InvalidDataException($"{path}: tensor '{stored}' scales no I8 tensor");
            if (canonical is not ("cls.predictions.decoder.weight" or "cls.predictions.decoder.bias"))
                ignored.Add(stored);
        }
        return (weights, ignored);
    }

    /// <summary>The per-row scales of an I8 tensor X are stored as the F32 tensor X_scale [rows].</summary>
    public const string ScaleSuffix = "_scale";

    /// <summary>Reads an I8 matrix and its scales into <paramref name="param"/>: the int8 form is kept, the float
    /// values are its dequantization.</summary>
    static void ReadInt8(SafeTensorsFile file, string name, string stored, Param param,
        Dictionary<string, string> byCanonical)
    {
        string path = file.Path;
        if (!BertWeights.IsInt8(name) || param.Shape.Length != 2)
            throw new InvalidDataException(
                $"{path}: tensor '{stored}' is I8, but only linear weights and word embeddings may be");
        if (!byCanonical.Remove(name + ScaleSuffix, out var scaleName))
            throw new InvalidDataException($"{path}: tensor '{stored}' is I8 but its scales "
                + $"'{stored}{ScaleSuffix}' are missing");
        var scaleInfo = file.Tensors[scaleName];
        int rows = param.Shape[0], cols = param.Shape[1];
        if (scaleInfo.DType != "F32" || scaleInfo.Shape is not [var n] || n != rows)
            throw new InvalidDataException(
                $"{path}: tensor '{scaleName}' must be F32 [{rows}], "
                    + $"is {scaleInfo.DType} [{string.Join(", ", scaleInfo.Shape)}]");
        var scales = file.ReadFloats(scaleName);
        foreach (float scale in scales)
            if (!float.IsFinite(scale) || scale <= 0)
                throw new InvalidDataException($"{path}: tensor '{scaleName}' has scale {scale}; "
                    + "scales must be positive and finite");
        var values = new sbyte[(long)rows * cols];
        file.ReadInt8(stored, values);
        if (Array.IndexOf(values, sbyte.MinValue) >= 0)
            throw new InvalidDataException($"{path}: tensor '{stored}' holds -128; "
                + "symmetric int8 weights lie in [-127, 127]");
        var matrix = new Int8Matrix(values, scales, rows, cols);
        matrix.Dequantize(param.Values);
        param.Int8 = matrix;
    }

    /// <summary>NaN or infinite weights make every answer NaN (or a silently arbitrary class); a gate outside
    /// [0, 1] comes from no training (METHOD.md point 1: gates are clipped to [0, 1] after every step).</summary>
    static void CheckValues(string path, string name, string stored, float[] values)
    {
        bool gate = name.EndsWith(".gate", StringComparison.Ordinal);
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (!float.IsFinite(v))
                throw new InvalidDataException($"{path}: tensor '{stored}' holds a non-finite value at index {i}");
            if (gate && !(v >= 0 && v <= 1))
                throw new InvalidDataException(
                    $"{path}: tensor '{stored}' holds gate value {v} at index {i}; gates lie in [0, 1]");
        }
    }

    /// <summary>Whether a layer index of a tensor name is one of 0..layers-1 as ASCII decimal digits without
    /// leading zeros (so "01" or an Arabic-Indic digit cannot name a second copy of a layer).</summary>
    static bool IsLayer(string index, int layers) =>
        index.Length is > 0 and <= 9 && index.All(char.IsAsciiDigit) && (index == "0" || index[0] != '0')
        && int.Parse(index, CultureInfo.InvariantCulture) < layers;

    static string ShapeHint(string name, BertConfig c) => name.StartsWith("classifier.", StringComparison.Ordinal)
        ? $" (num_labels = {c.NumLabels})" : "";

    /// <summary>The name <see cref="BertWeights.Named"/> uses for a stored tensor, or null for tensors
    /// that are no model parameter (position_ids buffer, NSP head, anything unknown).</summary>
    internal static string? Canonical(string name)
    {
        if (name.EndsWith(ScaleSuffix, StringComparison.Ordinal))
            return Canonical(name[..^ScaleSuffix.Length]) is { } scaled ? scaled + ScaleSuffix : null;
        string n = name.StartsWith("bert.", StringComparison.Ordinal) ? name[5..] : name;
        if (n.EndsWith(".gamma", StringComparison.Ordinal)) n = n[..^6] + ".weight";
        else if (n.EndsWith(".beta", StringComparison.Ordinal)) n = n[..^5] + ".bias";
        if (n == "embeddings.position_ids") return null;
        if (n.StartsWith("embeddings.", StringComparison.Ordinal) || n.StartsWith("encoder.", StringComparison.Ordinal)
            || n.StartsWith("pooler.", StringComparison.Ordinal))
            return "bert." + n;
        if (n.StartsWith("classifier.", StringComparison.Ordinal)
            || n.StartsWith("cls.predictions.", StringComparison.Ordinal))
            return n;
        return null;
    }

    [GeneratedRegex(@"^bert\.encoder\.layer\.([^.]*)\.")]
    private static partial Regex LayerIndex();

    static IEnumerable<StoredTensor> Stored(string name, Param p, TensorStorage storage)
    {
        if (storage is TensorStorage.Int8 or TensorStorage.Int8F16 && BertWeights.IsInt8(name))
        {
            var matrix = Int8Matrix.Of(p);
            yield return StoredTensor.I8(name, p.Shape, matrix.Values);
            yield return StoredTensor.F32(name + ScaleSuffix, [matrix.Rows], matrix.Scales);
        }
        else if (storage is TensorStorage.F16 or TensorStorage.Int8F16)
            yield return StoredTensor.F16(name, p.Shape, p.Values);
        else yield return StoredTensor.F32(name, p.Shape, p.Values);
    }

    /// <summary>A gated model's config.json records its gate positions, the threshold it is served at and the
    /// kept counts that follow (for the reader; loading recomputes them); a dense model's has none of them.
    /// </summary>
    void WriteGateSettings(System.Text.Json.Nodes.JsonObject config)
    {
        if (!Weights.HasGates)
        {
            config.Remove("gate_positions");
            config.Remove("gate_threshold");
            config.Remove("gate_kept_counts");
            return;
        }
        config["gate_threshold"] = Config.GateThreshold;
        var kept = TokenGateEvaluator.ComputeKeptCounts(Weights.Layers.Select(l => l.Gate?.Values).ToArray(),
            Config.GateThreshold);
        config["gate_kept_counts"] = new System.Text.Json.Nodes.JsonArray(
            kept.Select(m => (System.Text.Json.Nodes.JsonNode?)m).ToArray());
    }

    /// <summary>Writes the HuggingFace layout (BertForSequenceClassification names, config.json with every
    /// kept key, vocab.txt and tokenizer_config.json copied from the source directory, or made from the
    /// tokenizer where it has none). Each file is written to a temporary name and renamed.</summary>
    public void Save(string directory, TensorStorage storage = TensorStorage.F32)
    {
        Directory.CreateDirectory(directory);
        SafeTensors.Write(Path.Combine(directory, WeightsFile),
            Weights.Named().SelectMany(t => Stored(t.Name, t.Param, storage)));
        var config = Config.ToJson();
        if (storage is TensorStorage.Int8 or TensorStorage.Int8F16) config["precision"] = "int8";
        else config.Remove("precision");
        WriteGateSettings(config);
        // The head decides the class HuggingFace builds (a fine-tuned MLM checkpoint is a classifier now).
        config["architectures"] = new System.Text.Json.Nodes.JsonArray(
                Weights.ClassifierWeight is not null ? "BertForSequenceClassification"
                : Weights.MlmHead is not null ? "BertForMaskedLM" : "BertModel");
        BertConfig.WriteJson(Path.Combine(directory, ConfigFile), config);
        if (SourceDirectory is { } source && Path.GetFullPath(source) == Path.GetFullPath(directory)) return;
        CopyOrMake(VocabFile, tokenizer => BertWordPieceTokenizer.VocabText(tokenizer.Tokens));
        CopyOrMake(TokenizerConfigFile, tokenizer => tokenizer.OptionsJson(MaxSequenceLength).ToJsonString(
            new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");

        void CopyOrMake(string name, Func<BertWordPieceTokenizer, string> make)
        {
            string to = Path.Combine(directory, name);
            if (SourceDirectory is { } from && File.Exists(Path.Combine(from, name)))
            {
                using var stream = ModelFiles.OpenRegular(Path.Combine(from, name), ModelFiles.MaxVocabBytes);
                AtomicFile.Write(to, target => stream.CopyTo(target));
            }
            else if (Tokenizer is { } tokenizer) AtomicFile.WriteAllText(to, make(tokenizer));
        }
    }
}
