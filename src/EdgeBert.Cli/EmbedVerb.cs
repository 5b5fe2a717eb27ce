using System.Text.Json;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert embed`: sentence embeddings, of one text or of a JSONL file, as sentence-transformers
/// computes them for models such as all-MiniLM-L6-v2 (mean pooling, L2-normalised).</summary>
static class EmbedVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("embed",
            "sentence embeddings of a text or a JSONL of texts (mean pooling, L2-normalised)",
            """
            edgebert embed [--model DIR] TEXT [--pooling mean|cls] [--no-normalize] [--max-len N] [--threads T]
                           [--precision fp32|int8]
            edgebert embed [--model DIR] --input IN.jsonl --output OUT.jsonl [--batch-size N] [options above]
              Prints one JSON line {"input_ids": [...], "embedding": [...]}: the mean of the last hidden states
              over the text's tokens ([CLS] and [SEP] included, as sentence-transformers does), divided by its
              L2 norm. --pooling cls takes the [CLS] token's state instead (default: the pooling stored by
              `import --pooling`, else mean); --no-normalize keeps the length.
              Texts are truncated to --max-len tokens (default: the model's model_max_length).
              With --input, each line is {"text": "...", "text_pair": "..."(optional)} or
              {"input_ids": [..], "token_type_ids": [..](optional)} (an empty text is embedded too); each
              output line, in order, is {"input_ids","embedding"}. The output is written to a new temporary
              file and renamed when every line succeeded; on an error or Ctrl+C nothing is written.
              --batch-size (default 16) sequences run through the encoder at once; progress goes to stderr.
            """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelArg = a.String("model"), input = a.String("input"), output = a.String("output");
        // Checked before the model loads, so a typo does not cost the load.
        Pooling? poolingArg = a.String("pooling") is { } p ? SentenceEmbedding.ParsePooling(p) : null;
        bool normalize = !a.Flag("no-normalize");
        int threads = a.Threads();
        int? maxLen = a.Has("max-len") ? a.Int("max-len", 0, 2) : null;
        int batchSize = a.Int("batch-size", 16, 1, 4096);
        var engineOptions = PrecisionOption.Read(a);
        a.RejectUnknown(maxPositionals: input is null ? 1 : 0);
        if ((input is null) != (output is null)) throw new UsageException("--input and --output go together");
        if (input is null && a.Positionals.Count == 0) throw new UsageException("embed needs a TEXT or --input");
        if (input is not null)
        {
            if (InferVerbs.SameFile(input, output!))
                throw new UsageException($"--output {output} is the input file: it would be replaced by the results");
            InputFile.RequireRegular(input);
        }

        using var embedder = TextEmbedder.Load(ModelLocator.ResolveSource(modelArg), new EmbedderOptions
        {
            Threads = threads, Precision = engineOptions.Precision, Pooling = poolingArg, Normalize = normalize,
            MaxLength = maxLen, BatchSize = batchSize,
        });
        if (input is null)
        {
            var sequence = SequenceInput.From(embedder.Encode(a.Positionals[0]));
            var buffer = new MemoryStream();
            Write(buffer, sequence, embedder.Embed([sequence])[0]);
            // Through the verb's writer, not the process's stdout, so callers (and tests) capture it.
            o.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
            return 0;
        }

        var sequences = InferVerbs.ReadInputs(input, embedder.Encode, embedder.Engine, allowEmptyText: true);
        using var stop = new StopSignal();
        try
        {
            AtomicFile.Write(output!, stream =>
            {
                var newline = "\n"u8.ToArray();
                var bar = ProgressBar.OnStandardError("embed", sequences.Count);
                for (int start = 0; start < sequences.Count; start += batchSize)
                {
                    // Throwing leaves AtomicFile to delete its temporary file, so Ctrl+C writes nothing.
                    var batch = sequences.GetRange(start, Math.Min(batchSize, sequences.Count - start));
                    var embeddings = embedder.Embed(batch, stop.Token);
                    for (int i = 0; i < batch.Count; i++)
                    {
                        Write(stream, batch[i], embeddings[i]);
                        stream.Write(newline);
                    }
                    bar.Report(start + batch.Count);
                }
            });
        }
        catch (OperationCanceledException)
        {
            o.WriteLine($"interrupted: {output} not written");
            return 130;
        }
        return 0;
    }

    static void Write(Stream stream, SequenceInput sequence, float[] embedding)
    {
        using var writer = new Utf8JsonWriter(stream);
        writer.WriteStartObject();
        writer.WriteStartArray("input_ids");
        foreach (int id in sequence.InputIds) writer.WriteNumberValue(id);
        writer.WriteEndArray();
        writer.WriteStartArray("embedding");
        foreach (float v in embedding) writer.WriteNumberValue(v);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
