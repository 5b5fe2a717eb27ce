using System.Text.Json;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert embed`: the sentence embedding of one text, as sentence-transformers computes it for
/// models such as all-MiniLM-L6-v2 (mean pooling, L2-normalised).</summary>
static class EmbedVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("embed", "the sentence embedding of a text (mean pooling, L2-normalised)",
            """
            edgebert embed [--model DIR] TEXT [--pooling mean|cls] [--no-normalize] [--max-len N] [--threads T]
                           [--precision fp32|int8]
              Prints one JSON line {"input_ids": [...], "embedding": [...]}: the mean of the last hidden states
              over the text's tokens ([CLS] and [SEP] included, as sentence-transformers does), divided by its
              L2 norm. --pooling cls takes the [CLS] token's state instead (default: the pooling stored by
              `import --pooling`, else mean); --no-normalize keeps the length.
              Texts are truncated to --max-len tokens (default: the model's model_max_length).
            """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelArg = a.String("model");
        // Checked before the model loads, so a typo does not cost the load.
        Pooling? poolingArg = a.String("pooling") is { } p ? SentenceEmbedding.ParsePooling(p) : null;
        bool normalize = !a.Flag("no-normalize");
        int threads = a.Int("threads", Environment.ProcessorCount, 1, 256);
        int? maxLen = a.Has("max-len") ? a.Int("max-len", 0, 2) : null;
        var engineOptions = PrecisionOption.Read(a);
        a.RejectUnknown(maxPositionals: 1);
        if (a.Positionals.Count == 0) throw new UsageException("embed needs a TEXT");

        var checkpoint = BertCheckpoint.Load(ModelLocator.Resolve(modelArg));
        var pooling = poolingArg ?? SentenceEmbedding.DefaultPooling(checkpoint.Config);
        var engine = BertEngine.Load(checkpoint, engineOptions);
        var encoded = checkpoint.RequireTokenizer().Encode(a.Positionals[0], null,
            Math.Min(maxLen ?? int.MaxValue, checkpoint.MaxSequenceLength));
        using var pool = new WorkerPool(threads);
        // Every token counts in the mean, so a gated model runs dense here.
        var result = engine.Run([SequenceInput.From(encoded)], new RunOptions(UseGates: false, ReturnHidden: true),
            pool)[0];
        var embedding = SentenceEmbedding.Pool(result.Hidden, engine.Hidden, pooling, normalize);
        // Through the verb's writer, not the process's stdout, so callers (and tests) capture it.
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("input_ids");
            foreach (int id in encoded.InputIds) writer.WriteNumberValue(id);
            writer.WriteEndArray();
            writer.WriteStartArray("embedding");
            foreach (float v in embedding) writer.WriteNumberValue(v);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        o.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        return 0;
    }
}
