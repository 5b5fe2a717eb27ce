using System.Text.Json;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert tokenize [--model DIR] [--pair TEXT2] TEXT`: the HF-exact encoding as JSON.</summary>
static class TokenizeVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("tokenize", "show the tokens and ids of a text (or text pair)",
            """
            edgebert tokenize [--model DIR] [--pair TEXT2] [--max-len N] TEXT
              --model defaults to $EDGEBERT_MODEL, else the shipped weights/edgebert-minilm-sst2.
              --max-len defaults to the model's maximum length.
            """, Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        string? modelArg = a.String("model"), pair = a.String("pair");
        int maxLength = a.Int("max-len", 0, min: 3);
        a.RejectUnknown(maxPositionals: 1);
        if (a.Positionals.Count == 0) throw new UsageException("missing TEXT");
        string text = a.Positionals[0];
        string dir = ModelLocator.Resolve(modelArg);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: model directory not found");

        string tokConfig = Path.Combine(dir, BertCheckpoint.TokenizerConfigFile);
        var tokenizer = BertWordPieceTokenizer.Load(Path.Combine(dir, BertCheckpoint.VocabFile),
            File.Exists(tokConfig) ? tokConfig : null);
        string configPath = Path.Combine(dir, BertCheckpoint.ConfigFile);
        // Without --max-len, truncate to what the model accepts.
        if (maxLength == 0)
            maxLength = Math.Min(tokenizer.ModelMaxLength,
                                 File.Exists(configPath) ? BertConfig.Load(configPath).MaxPositionEmbeddings
                                     : int.MaxValue);
        var encoded = tokenizer.Encode(text, pair, maxLength);

        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer,
            new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartArray("tokens");
            foreach (var t in encoded.Tokens) json.WriteStringValue(t);
            json.WriteEndArray();
            json.WriteStartArray("input_ids");
            foreach (var id in encoded.InputIds) json.WriteNumberValue(id);
            json.WriteEndArray();
            json.WriteStartArray("token_type_ids");
            foreach (var t in encoded.TokenTypeIds) json.WriteNumberValue(t);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        o.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        return 0;
    }
}
