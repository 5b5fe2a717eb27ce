using System.Reflection;

namespace EdgeBert.Model;

/// <summary>Where a model's files come from: a directory in the HuggingFace layout, streams or byte arrays (an
/// Android asset, a download), or an assembly's embedded resources. Whatever the source, the files get the checks
/// a directory's get: bounded reads of config.json, vocab.txt and tokenizer_config.json, a validated safetensors
/// header, and one-line errors naming the file.</summary>
public sealed class ModelSource
{
    readonly Func<string, Stream?>? _open;

    ModelSource(string name, string? directory, Func<string, Stream?>? open)
    {
        Name = name;
        Directory = directory;
        _open = open;
    }

    /// <summary>What error messages call the source: the directory, or the name given.</summary>
    public string Name { get; }

    /// <summary>The model directory, or null for a source that is no directory.</summary>
    public string? Directory { get; }

    /// <summary>The files of <paramref name="directory"/>.</summary>
    public static ModelSource FromDirectory(string directory) => new(directory, directory, null);

    /// <summary>A model from streams, each read once (weights from its position to its end). The checkpoint loader
    /// disposes them. A weights stream that cannot seek is copied into memory (at most 2 GB).</summary>
    /// <param name="config">config.json.</param>
    /// <param name="weights">model.safetensors.</param>
    /// <param name="vocab">vocab.txt; without it the model takes token ids only.</param>
    /// <param name="tokenizerConfig">tokenizer_config.json, if the model has one.</param>
    /// <param name="name">What error messages call the model.</param>
    public static ModelSource FromStreams(Stream config, Stream weights, Stream? vocab = null,
        Stream? tokenizerConfig = null, string name = "model")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        var files = new Dictionary<string, Stream?>
        {
            [BertCheckpoint.ConfigFile] = config, [BertCheckpoint.WeightsFile] = weights,
            [BertCheckpoint.VocabFile] = vocab, [BertCheckpoint.TokenizerConfigFile] = tokenizerConfig,
        };
        return new ModelSource(name, null, file => files.Remove(file, out var stream) ? stream : null);
    }

    /// <summary>A model from the bytes of its files (see <see cref="FromStreams"/>); the arrays are not copied.
    /// </summary>
    /// <param name="config">config.json.</param>
    /// <param name="weights">model.safetensors.</param>
    /// <param name="vocab">vocab.txt; without it the model takes token ids only.</param>
    /// <param name="tokenizerConfig">tokenizer_config.json, if the model has one.</param>
    /// <param name="name">What error messages call the model.</param>
    public static ModelSource FromBytes(byte[] config, byte[] weights, byte[]? vocab = null,
        byte[]? tokenizerConfig = null, string name = "model") =>
        FromStreams(Open(config), Open(weights), vocab is null ? null : Open(vocab),
            tokenizerConfig is null ? null : Open(tokenizerConfig), name);

    static MemoryStream Open(byte[] bytes) => new(bytes ?? throw new ArgumentNullException(nameof(bytes)), false);

    /// <summary>A model embedded in <paramref name="assembly"/> as the resources <paramref name="prefix"/> +
    /// config.json, model.safetensors, vocab.txt and (optional) tokenizer_config.json, e.g. by
    /// &lt;EmbeddedResource Include="model/config.json" LogicalName="model/config.json" /&gt; and so on.</summary>
    public static ModelSource FromResources(Assembly assembly, string prefix)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return new ModelSource($"{assembly.GetName().Name}:{prefix.TrimEnd('/')}", null,
            file => assembly.GetManifestResourceStream(prefix + file));
    }

    /// <summary>Whether <paramref name="assembly"/> embeds a model under <paramref name="prefix"/>.</summary>
    public static bool HasResources(Assembly assembly, string prefix) =>
        assembly.GetManifestResourceInfo(prefix + BertCheckpoint.ConfigFile) is not null
        && assembly.GetManifestResourceInfo(prefix + BertCheckpoint.WeightsFile) is not null;

    /// <summary>The stream of one of the model's files, or null when the source lacks it; the caller disposes it.
    /// </summary>
    internal Stream? OpenFile(string file) => _open!(file);

    /// <summary>What error messages call one of the source's files.</summary>
    internal string FileName(string file) => Directory is not null ? Path.Combine(Directory, file) : $"{Name}/{file}";
}
