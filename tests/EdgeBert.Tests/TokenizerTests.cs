using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>A fact that needs ../shared/data/bert-base-uncased/vocab.txt; skipped with
/// that reason when absent.</summary>
public sealed class NeedsBertBaseVocabFactAttribute : FactAttribute
{
    public NeedsBertBaseVocabFactAttribute()
    {
        if (!File.Exists(ModelTestFiles.BertBaseVocab))
            Skip = $"{ModelTestFiles.BertBaseVocab} is absent (shared data not beside the clone)";
    }
}

public class TokenizerTests
{
    static JsonArray GoldenCases() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(ModelTestFiles.Fixtures,
            "tokenizer_golden.json")))!["cases"]!.AsArray();

    static string Ids(IEnumerable<int> ids) => string.Join(",", ids);
    static string JsonIds(JsonNode n) => string.Join(",", n.AsArray().Select(x => (int)x!));

    [NeedsBertBaseVocabFact]
    public void BertBaseUncasedMatchesTheHuggingFaceAlgorithm()
    {
        var tok = BertWordPieceTokenizer.Load(ModelTestFiles.BertBaseVocab);
        foreach (var c in GoldenCases())
        {
            string text = (string)c!["text"]!;
            var got = tok.Encode(text, (string?)c["pair"], (int)c["max_length"]!);
            string label = $"case {Escape(text)}";
            Assert.True(string.Join(" ", c["tokens"]!.AsArray().Select(x => (string)x!)) == string.Join(" ",
                got.Tokens),
                        $"{label}: expected {c["tokens"]!.ToJsonString()}, got [{string.Join(" ", got.Tokens)}]");
            Assert.Equal(JsonIds(c["input_ids"]!), Ids(got.InputIds));
            Assert.Equal(JsonIds(c["token_type_ids"]!), Ids(got.TokenTypeIds));
        }
    }

    /// <summary>NativeAOT runs with InvariantGlobalization, where string.Normalize and culture casing do nothing
    /// to non-ASCII text; the CLI in a child process with invariant mode on must give the same ids.</summary>
    [NeedsBertBaseVocabFact]
    public void InvariantGlobalizationGivesTheSameIds()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "edgebert.dll");
        foreach (var c in GoldenCases().Where(c => !((string)c!["text"]!).Contains('\0')
            && ((string)c!["text"]!).Any(ch => ch > 127)))
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8 };
            psi.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
            foreach (var a in new[] { dll, "tokenize", "--model", Path.GetDirectoryName(ModelTestFiles.BertBaseVocab)!,
                "--max-len", c!["max_length"]!.ToString() })
                psi.ArgumentList.Add(a);
            if (c["pair"] is JsonNode pair) { psi.ArgumentList.Add("--pair"); psi.ArgumentList.Add((string)pair!); }
            psi.ArgumentList.Add((string)c["text"]!);
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd();
            string errors = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, errors);
            Assert.Equal(JsonIds(c["input_ids"]!), JsonIds(JsonNode.Parse(output)!["input_ids"]!));
        }
    }

    [Fact]
    public void TinyVocabTextsMatchTheFixtureReference()
    {
        var ckpt = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        foreach (var c in ModelTestFiles.Expected()["cases"]!.AsArray().Where(c => c!["text"] is not null))
        {
            var got = ckpt.RequireTokenizer().Encode((string)c!["text"]!, (string?)c["pair"], ckpt.MaxSequenceLength);
            Assert.Equal(JsonIds(c["input_ids"]!), Ids(got.InputIds));
            Assert.Equal(JsonIds(c["token_type_ids"]!), Ids(got.TokenTypeIds));
        }
    }

    [Fact]
    public void TokenizerConfigSettingsAreRead()
    {
        using var tmp = new ModelTestFiles.TempDir();
        File.WriteAllText(tmp.File("tokenizer_config.json"),
            "{\"do_lower_case\": false, \"strip_accents\": null, \"model_max_length\": "
                + "1000000000000000019884624838656, \"unk_token\": {\"content\": \"[UNK]\"}}");
        File.WriteAllLines(tmp.File("vocab.txt"),
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Café", "café", "cafe", "caf", "##é"]);
        var cased = BertWordPieceTokenizer.Load(tmp.File("vocab.txt"), tmp.File("tokenizer_config.json"));
        Assert.Equal(int.MaxValue, cased.ModelMaxLength);
        // Cased, no accent stripping: the decomposed input is composed again (NFC) before lookup.
        Assert.Equal(["[CLS]", "Café", "[SEP]"], cased.Encode("Cafe\u0301").Tokens);
        var stripped = BertWordPieceTokenizer.Load(tmp.File("vocab.txt"),
            new BertTokenizerOptions { DoLowerCase = true, StripAccents = false });
        Assert.Equal(["[CLS]", "café", "[SEP]"], stripped.Encode("CAFÉ").Tokens);
        File.WriteAllText(tmp.File("tokenizer_config.json"), "{\"do_lower_case\": \"yes\"}");
        var e = Assert.Throws<InvalidDataException>(() =>
            BertWordPieceTokenizer.ReadOptions(tmp.File("tokenizer_config.json")));
        Assert.Contains("do_lower_case", e.Message);
        Assert.Contains("tokenizer_config.json", e.Message);
    }

    [Fact]
    public void MaxLengthBelowSpecialTokensIsAnError()
    {
        var tok = BertCheckpoint.Load(ModelTestFiles.TinyBert).RequireTokenizer();
        Assert.Throws<ArgumentException>(() => tok.Encode("the cat", "the dog", 2));
        Assert.Equal(["[CLS]", "[SEP]"], tok.Encode("the cat", null, 2).Tokens);
    }

    /// <summary>ICU (present in the test process) is an independent NFD/NFC implementation for
    /// the generated tables.</summary>
    [Fact]
    public void NormalizationTablesAgreeWithIcuOnTheBmp()
    {
        var disagreements = new List<string>();
        for (int cp = 0xA0; cp < 0x10000; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            if (UnicodeText.Category(cp) == System.Globalization.UnicodeCategory.OtherNotAssigned) continue;
            string s = ((char)cp).ToString() + "\u0323\u0301";  // two marks of different classes exercise reordering
            var mine = UnicodeText.ToUtf16(UnicodeText.Nfd(UnicodeText.CodePoints(s)));
            var mineC = UnicodeText.ToUtf16(UnicodeText.Nfc(UnicodeText.CodePoints(s)));
            if (mine != s.Normalize(NormalizationForm.FormD) || mineC != s.Normalize(NormalizationForm.FormC))
                disagreements.Add($"U+{cp:X4}");
        }
        Assert.True(disagreements.Count == 0, "differs from ICU: " + string.Join(" ", disagreements.Take(30)));
    }

    static string Escape(string s) => string.Concat(s.Take(40)
        .Select(c => c < 32 || c > 126 ? $"\\u{(int)c:X4}" : c.ToString()));
}
