using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>The tokenizer and one model forward against PyTorch/HuggingFace outputs. The built-in model is
/// the tiny fixture (tests/fixtures/tiny_bert and its float64 PyTorch logits), embedded in the binary.</summary>
static class SelfTestModel
{
    const string ResourcePrefix = "selftest/";
    static readonly string[] ModelFiles =
        [BertCheckpoint.ConfigFile, BertCheckpoint.WeightsFile, BertCheckpoint.VocabFile,
            BertCheckpoint.TokenizerConfigFile];

    /// <summary>A case of the expected file; Text is null for the id-only cases.</summary>
    sealed record ExpectedCase(string? Text, string? Pair, int[] InputIds, int[] TokenTypeIds, double[] Logits);

    public static void Run(SelfTestReport report, string? modelDir, string? expectedFile)
    {
        string source = modelDir ?? "built-in tiny_bert";
        BertCheckpoint? checkpoint = null;
        List<ExpectedCase> cases = new();
        report.Guard($"load {source}", () =>
        {
            checkpoint = modelDir is null ? LoadBuiltInModel() : BertCheckpoint.Load(modelDir);
            cases = expectedFile is null
                ? ReadCases(Resource("tiny_bert_expected.json"), "built-in tiny_bert_expected.json")
                                         : ReadCases(File.OpenRead(expectedFile), expectedFile);
            if (cases.Count == 0) throw new InvalidDataException("no expected cases");
        });
        if (checkpoint is null || cases.Count == 0) return;

        var inputs = new List<SequenceInput>();
        report.Guard("tokenizer", () => inputs = CheckTokenizer(report, checkpoint, cases));
        if (inputs.Count != cases.Count) return;

        foreach (var isa in IsaSelector.Supported)
        {
            // The checkpoint's weights stay, so each path packs its own engine from them.
            var engine = new BertEngine(checkpoint.Config, checkpoint.Weights, new EngineOptions { Isa = isa });
            if (engine.NumLabels == 0)
            {
                report.Record($"model forward {source}", false,
                    "the model has no classifier, so there are no logits to compare");
                return;
            }
            report.Guard($"{IsaSelector.Name(isa)} model forward", () =>
            {
                var results = engine.Run(inputs, new RunOptions(UseGates: false));
                double worst = 0, tolerance = 0;
                for (int c = 0; c < cases.Count; c++)
                {
                    double scale = cases[c].Logits.Max(Math.Abs);
                    // float32 against PyTorch's float64: about 1e-6 on the tiny model; 2e-5 relative leaves room
                    // for a deeper model while any real bug (a wrong mask, a missing bias) is far above it.
                    tolerance = Math.Max(tolerance, 2e-5 * Math.Max(1, scale));
                    for (int j = 0; j < cases[c].Logits.Length; j++)
                        worst = Math.Max(worst, Math.Abs(results[c].Logits[j] - cases[c].Logits[j]));
                }
                report.Within($"{IsaSelector.Name(isa),-9} model forward {source}, "
                    + $"{cases.Count} sequences in one batch (max |logit - pytorch|)",
                    worst, tolerance);
            });
        }
    }

    /// <summary>Every case's text must give HuggingFace's ids (id-only cases go straight to the forward).
    /// When the tokenizer lowercases and strips accents (uncased BERT), the text with accents added,
    /// precomposed and decomposed, must give the same ids: that needs the canonical decompositions, which
    /// the tokenizer carries itself because .NET's normalisation is unavailable under InvariantGlobalization
    /// (the NativeAOT setting).</summary>
    static List<SequenceInput> CheckTokenizer(SelfTestReport report, BertCheckpoint checkpoint,
        List<ExpectedCase> cases)
    {
        var tokenizer = checkpoint.RequireTokenizer();
        bool stripsAccents = tokenizer.Options.DoLowerCase && (tokenizer.Options.StripAccents ?? true);
        var inputs = new List<SequenceInput>();
        for (int c = 0; c < cases.Count; c++)
        {
            var expected = cases[c];
            if (expected.Text is null)
            {
                inputs.Add(new SequenceInput(expected.InputIds, expected.TokenTypeIds));
                continue;
            }
            var variants = new List<(string Kind, string Text, string? Pair)>
            {
                ("plain", expected.Text, expected.Pair),
            };
            if (stripsAccents)
            {
                variants.Add(("precomposed accents", Accented(expected.Text, decomposed: false, c),
                    Accented(expected.Pair, false, c)));
                variants.Add(("decomposed accents", Accented(expected.Text, decomposed: true, c),
                    Accented(expected.Pair, true, c)));
            }
            TokenizedText? last = null;
            foreach (var (kind, text, pair) in variants)
            {
                var encoded = tokenizer.Encode(text, pair, checkpoint.MaxSequenceLength);
                bool same = encoded.InputIds.AsSpan().SequenceEqual(expected.InputIds)
                            && encoded.TokenTypeIds.AsSpan().SequenceEqual(expected.TokenTypeIds);
                string shown = pair is null ? Quote(text) : $"{Quote(text)} + {Quote(pair)}";
                report.Record($"tokenizer {kind} {shown}", same,
                    same ? $"{encoded.Length} ids as HuggingFace"
                        : $"ids [{string.Join(' ', encoded.InputIds)}], "
                        + $"expected [{string.Join(' ', expected.InputIds)}]");
                last = encoded;
            }
            // The forward runs on the last variant's ids: with accents, the whole text-to-logits path is checked.
            inputs.Add(SequenceInput.From(last!));
        }
        return inputs;
    }

    /// <summary>Letters with canonical decompositions (base letter + combining marks, Unicode 14 as Python's
    /// unicodedata has them), including uppercase and two-mark letters, to be stripped
    /// back to the base letter.</summary>
    static readonly (string Composed, string Decomposed)[] AccentedLetters =
    [
        ("\u00E1", "a\u0301"), ("\u00E0", "a\u0300"), ("\u00E2", "a\u0302"), ("\u00E4", "a\u0308"),
        ("\u00E5", "a\u030A"), ("\u00E3", "a\u0303"), ("\u00C1", "A\u0301"), ("\u00C5", "A\u030A"),
        ("\u00E9", "e\u0301"), ("\u00E8", "e\u0300"), ("\u00EA", "e\u0302"), ("\u00EB", "e\u0308"),
        ("\u00C9", "E\u0301"), ("\u011B", "e\u030C"), ("\u1EC7", "e\u0323\u0302"),
        ("\u00ED", "i\u0301"), ("\u00EC", "i\u0300"), ("\u00EE", "i\u0302"), ("\u00EF", "i\u0308"),
        ("\u00CD", "I\u0301"),
        ("\u00F3", "o\u0301"), ("\u00F2", "o\u0300"), ("\u00F4", "o\u0302"), ("\u00F6", "o\u0308"),
        ("\u00F5", "o\u0303"), ("\u00D6", "O\u0308"), ("\u0151", "o\u030B"), ("\u1ED1", "o\u0302\u0301"),
        ("\u00FA", "u\u0301"), ("\u00F9", "u\u0300"), ("\u00FB", "u\u0302"), ("\u00FC", "u\u0308"),
        ("\u00DC", "U\u0308"), ("\u016F", "u\u030A"),
        ("\u00F1", "n\u0303"), ("\u00D1", "N\u0303"), ("\u00E7", "c\u0327"), ("\u00C7", "C\u0327"),
        ("\u00FD", "y\u0301"), ("\u00FF", "y\u0308"), ("\u015B", "s\u0301"), ("\u017E", "z\u030C"),
        ("\u011F", "g\u0306"), ("\u0159", "r\u030C"), ("\u0165", "t\u030C"),
    ];

    static readonly Dictionary<char, (string Composed, string Decomposed)[]> AccentsByLetter =
        AccentedLetters.GroupBy(l => char.ToLowerInvariant(l.Decomposed[0])).ToDictionary(g => g.Key, g => g.ToArray());

    /// <summary>Every lowercase letter that has accented forms gets one, cycling through them.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(text))]
    static string? Accented(string? text, bool decomposed, int seed)
    {
        if (text is null) return null;
        var sb = new StringBuilder();
        int turn = seed;
        foreach (char ch in text)
        {
            if (AccentsByLetter.TryGetValue(ch, out var forms))
            {
                var form = forms[turn++ % forms.Length];
                sb.Append(decomposed ? form.Decomposed : form.Composed);
            }
            else sb.Append(ch);
        }
        return sb.ToString();
    }

    static string Quote(string text) => "\"" + text + "\"";

    static BertCheckpoint LoadBuiltInModel()
    {
        // The loader reads a directory, so the embedded files go through a temporary one: the
        // self-test then exercises the same loading code as a real model.
        var dir = Directory.CreateTempSubdirectory("edgebert-selftest-");
        try
        {
            foreach (var name in ModelFiles)
            {
                using var input = Resource("tiny_bert/" + name);
                using var output = File.Create(Path.Combine(dir.FullName, name));
                input.CopyTo(output);
            }
            return BertCheckpoint.Load(dir.FullName);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    static Stream Resource(string name) =>
        typeof(SelfTestModel).Assembly.GetManifestResourceStream(ResourcePrefix + name)
        ?? throw new InvalidOperationException($"resource {name} is missing from the binary");

    static List<ExpectedCase> ReadCases(Stream stream, string source)
    {
        using (stream)
        using (var doc = JsonDocument.Parse(stream))
        {
            if (!doc.RootElement.TryGetProperty("cases", out var list) || list.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{source}: no \"cases\" array");
            var cases = new List<ExpectedCase>();
            foreach (var c in list.EnumerateArray())
            {
                var pair = c.TryGetProperty("pair", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()
                    : null;
                var ids = c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var types = c.TryGetProperty("token_type_ids", out var t)
                    ? t.EnumerateArray().Select(e => e.GetInt32()).ToArray() : new int[ids.Length];
                var text = c.TryGetProperty("text", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString()
                    : null;
                cases.Add(new ExpectedCase(text, pair, ids, types,
                    c.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray()));
            }
            return cases;
        }
    }
}
