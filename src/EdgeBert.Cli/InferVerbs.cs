using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert infer` (JSONL in, JSONL out) and `edgebert classify` (one text).</summary>
static class InferVerbs
{
    public static void Register(List<CliApp.Verb> verbs)
    {
        verbs.Add(new CliApp.Verb("classify", "classify one text (or a pair) with a model",
            """
            edgebert classify [--model DIR] [--pair TEXT2] [--json] [--no-gates] [--explain] [--threads N]
                              [--precision fp32|int8] TEXT
              Prints the predicted label and its probability (regression models: the score).
              --model defaults to $EDGEBERT_MODEL, else the shipped weights/edgebert-minilm-sst2, else the model
              embedded in the executable (tools/publish-aot.sh).
              --explain lists, per layer, the words that survive the token gates. --threads: default the number
              of cores.
              --json prints {"label","probability","probabilities","logits","kept","flops","dense_flops"}, with
              --explain also "surviving_tokens" (per layer, the word pieces its feed-forward block ran on).
              --precision: the linear layers' arithmetic (default: the model's own; fp32 unless written by quantize).
            """, Classify));
        verbs.Add(new CliApp.Verb("infer", "run a model over a JSONL file of texts or token ids",
            """
            edgebert infer [--model DIR] --input IN.jsonl --output OUT.jsonl [--no-gates] [--threads N]
                           [--batch-size N] [--precision fp32|int8]
              Each input line is {"text": "...", "text_pair": "..."(optional)} or
              {"input_ids": [..], "token_type_ids": [..](optional)}. Each output line, in order:
              {"input_ids","logits","label","kept","flops","dense_flops"}; kept[j] = tokens layer j's
              feed-forward block ran on, flops = exact multiply-adds (dense_flops: without gates).
              Texts longer than the model's maximum length are truncated; id sequences are not.
              The output is written to a new temporary file and renamed when every line succeeded; on an error or
              Ctrl+C nothing is written. The input must be a regular file, each line at most 1M characters.
              --model as for classify; --threads defaults to the number of cores, --batch-size to 16.
              Progress goes to stderr.
              --precision: the linear layers' arithmetic (default: the model's own; fp32 unless written by quantize).
            """, Infer));
    }

    static ClassifierOptions Options(ParsedArgs a, bool explain = false) => new()
    {
        Threads = a.Threads(),
        Precision = PrecisionOption.Read(a).Precision,
        UseGates = !a.Flag("no-gates"),
        Explain = explain,
    };

    static int Classify(ParsedArgs a, TextWriter o)
    {
        string? modelArg = a.String("model"), pair = a.String("pair");
        bool json = a.Flag("json"), explain = a.Flag("explain");
        var options = Options(a, explain);
        a.RejectUnknown(maxPositionals: 1);
        if (a.Positionals.Count == 0) throw new UsageException("classify needs a TEXT");
        string text = a.Positionals[0];
        if (string.IsNullOrWhiteSpace(text)) throw new UsageException("TEXT is empty");

        using var classifier = TextClassifier.Load(ModelLocator.ResolveSource(modelArg), options);
        var result = classifier.Classify(text, pair);
        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            // Through the verb's writer, not the process's stdout, so callers (and tests) capture it.
            var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteString("label", result.Label);
                if (result.Probability is { } p) writer.WriteNumber("probability", p);
                if (!classifier.IsRegression)
                {
                    writer.WriteStartObject("probabilities");
                    for (int i = 0; i < classifier.Labels.Count; i++)
                        writer.WriteNumber(classifier.Labels[i], result.Probabilities[i]);
                    writer.WriteEndObject();
                }
                WriteLogits(writer, result);
                WriteCosts(writer, result);
                if (result.SurvivingTokens is { } layers)
                {
                    writer.WriteStartArray("surviving_tokens");
                    foreach (var layer in layers)
                    {
                        writer.WriteStartArray();
                        foreach (var token in layer) writer.WriteStringValue(token);
                        writer.WriteEndArray();
                    }
                    writer.WriteEndArray();
                }
                writer.WriteEndObject();
            }
            o.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
            return 0;
        }
        o.WriteLine(result.Probability is { } probability
            ? string.Create(inv, $"{result.Label}\t{probability:F4}") : result.Label);
        if (result.SurvivingTokens is { } survivors)
        {
            for (int j = 0; j < survivors.Length; j++)
                o.WriteLine($"layer {j}: {survivors[j].Length}/{result.Tokens!.Length} tokens: "
                    + string.Join(' ', survivors[j]));
            o.WriteLine(string.Create(inv,
                $"multiply-adds: {result.MultiplyAdds} of {result.DenseMultiplyAdds} dense "
                + $"({(double)result.DenseMultiplyAdds / result.MultiplyAdds:F2}x fewer)"));
        }
        return 0;
    }

    static void WriteLogits(Utf8JsonWriter w, Classification r)
    {
        w.WriteStartArray("logits");
        foreach (var z in r.Logits) w.WriteNumberValue(z);
        w.WriteEndArray();
    }

    static void WriteCosts(Utf8JsonWriter w, Classification r)
    {
        w.WriteStartArray("kept");
        foreach (var k in r.KeptTokens) w.WriteNumberValue(k);
        w.WriteEndArray();
        w.WriteNumber("flops", r.MultiplyAdds);
        w.WriteNumber("dense_flops", r.DenseMultiplyAdds);
    }

    static int Infer(ParsedArgs a, TextWriter o)
    {
        string? modelArg = a.String("model");
        string input = a.RequiredString("input"), output = a.RequiredString("output");
        int batchSize = a.Int("batch-size", 16, 1, 4096);
        var options = Options(a) with { BatchSize = batchSize };
        a.RejectUnknown();
        if (SameFile(input, output))
            throw new UsageException($"--output {output} is the input file: it would be replaced by the results");
        InputFile.RequireRegular(input);

        using var classifier = TextClassifier.Load(ModelLocator.ResolveSource(modelArg), options);
        var sequences = ReadInputs(input, classifier.Encode, classifier.Engine, allowEmptyText: false);

        using var stop = new StopSignal();
        try
        {
            Write(output, classifier, sequences, batchSize, stop.Token);
        }
        catch (OperationCanceledException)
        {
            o.WriteLine($"interrupted: {output} not written");
            return 130;
        }
        return 0;
    }

    static void Write(string output, TextClassifier classifier, List<SequenceInput> sequences, int batchSize,
        CancellationToken cancel)
    {
        AtomicFile.Write(output, stream =>
        {
            var newline = "\n"u8.ToArray();
            var bar = ProgressBar.OnStandardError("infer", sequences.Count);
            for (int start = 0; start < sequences.Count; start += batchSize)
            {
                // Throwing leaves AtomicFile to delete its temporary file, so Ctrl+C writes nothing.
                var batch = sequences.GetRange(start, Math.Min(batchSize, sequences.Count - start));
                var results = classifier.Classify(batch, cancel);
                for (int i = 0; i < results.Count; i++)
                {
                    using (var w = new Utf8JsonWriter(stream))
                    {
                        w.WriteStartObject();
                        w.WriteStartArray("input_ids");
                        foreach (var id in batch[i].InputIds) w.WriteNumberValue(id);
                        w.WriteEndArray();
                        WriteLogits(w, results[i]);
                        w.WriteString("label", results[i].Label);
                        WriteCosts(w, results[i]);
                        w.WriteEndObject();
                    }
                    stream.Write(newline);
                }
                bar.Report(start + batch.Count);
            }
        });
    }

    /// <summary>Whether two paths name one file: equal once made absolute and every symbolic link on the way
    /// (in the directories too) is followed.</summary>
    internal static bool SameFile(string a, string b) =>
        string.Equals(Resolve(a, 0), Resolve(b, 0), StringComparison.Ordinal);

    static string Resolve(string path, int depth)
    {
        // The kernel's own limit on links followed in one lookup (Linux's MAXSYMLINKS), so a loop ends.
        if (depth > 40) throw new IOException($"{path}: too many levels of symbolic links");
        string full = Path.GetFullPath(path);
        string? parent = Path.GetDirectoryName(full);
        if (parent is null) return full;
        // Only following a link counts towards the limit, not the directory levels.
        string resolvedParent = Resolve(parent, depth);
        string candidate = Path.Combine(resolvedParent, Path.GetFileName(full));
        // One link at a time, by hand: the output need not exist yet, and a dangling link still names a file.
        string? target = new FileInfo(candidate).LinkTarget;
        return target is null ? candidate : Resolve(Path.Combine(resolvedParent, target), depth + 1);
    }

    /// <summary>Bounds the memory one input line can take (a text is truncated to the model's length anyway).
    /// </summary>
    const int MaxLineChars = 1 << 20;

    /// <summary>Parses and checks every line before any work, so a bad line fails fast with its number.
    /// Texts go through <paramref name="encode"/> (which truncates them); id sequences are taken as they are.
    /// </summary>
    internal static List<SequenceInput> ReadInputs(string path, Func<string, string?, TokenizedText> encode,
        BertEngine engine, bool allowEmptyText)
    {
        var sequences = new List<SequenceInput>();
        int lineNumber = 0;
        foreach (var line in InputFile.ReadLines(path, MaxLineChars))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
                throw new InvalidDataException($"{path} line {lineNumber}: empty line");
            try
            {
                var sequence = ParseLine(line, encode, allowEmptyText);
                engine.Validate(sequence);
                sequences.Add(sequence);
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidDataException or FormatException
                                          or InvalidOperationException)
            {
                throw new InvalidDataException($"{path} line {lineNumber}: {e.Message}");
            }
        }
        if (sequences.Count == 0) throw new InvalidDataException($"{path}: no input lines");
        return sequences;
    }

    static SequenceInput ParseLine(string line, Func<string, string?, TokenizedText> encode, bool allowEmptyText)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException("expected a JSON object");
        if (root.TryGetProperty("input_ids", out var ids))
            return new SequenceInput(IntArray(ids, "input_ids"),
                root.TryGetProperty("token_type_ids", out var types) ? IntArray(types, "token_type_ids") : null);
        if (!root.TryGetProperty("text", out var textElement) || textElement.ValueKind != JsonValueKind.String)
            throw new InvalidDataException("expected \"text\" (a string) or \"input_ids\" (an array of integers)");
        string text = textElement.GetString()!;
        if (!allowEmptyText && string.IsNullOrWhiteSpace(text)) throw new InvalidDataException("\"text\" is empty");
        string? pair = null;
        if (root.TryGetProperty("text_pair", out var pairElement) && pairElement.ValueKind != JsonValueKind.Null)
        {
            if (pairElement.ValueKind != JsonValueKind.String)
                throw new InvalidDataException("\"text_pair\" must be a string");
            pair = pairElement.GetString();
            if (string.IsNullOrWhiteSpace(pair)) throw new InvalidDataException("\"text_pair\" is empty");
        }
        return SequenceInput.From(encode(text, pair));
    }

    static int[] IntArray(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"\"{name}\" must be an array of integers");
        var values = new int[e.GetArrayLength()];
        int i = 0;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out values[i]))
                throw new InvalidDataException($"\"{name}\"[{i}] is not an integer");
            i++;
        }
        return values;
    }
}
