using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>`export`/`quantize --vocab-size N --vocab-from PATH`: the pruned vocabulary against a plain greedy
/// WordPiece over the kept tokens, the pruned model against the full one, and the int8 + F16 storage.</summary>
public sealed class VocabularyPruningTests : IDisposable
{
    readonly ModelTestFiles.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    const string Sample = "the cat sat on the mat . the dog ran under the tree !\nthe bird flew , a big red house\n";
    static readonly string[] Words = ["the", "cat", "sat", "mat", "dogs", "movies", "playing", "walked", "zebra",
        "happy", "sadly", "tree", "x", "?"];

    string Pruned(int size, params string[] extra)
    {
        string sample = _dir.File("sample.txt"), output = _dir.File($"pruned-{size}");
        File.WriteAllText(sample, Sample);
        var (code, stdout, stderr) = CliRun.Run(["export", "--model", EngineFixtures.TinyBertGated, "--out", output,
            "--vocab-size", $"{size}", "--vocab-from", sample, .. extra]);
        Assert.True(code == 0, stderr);
        Assert.Contains($"{size} of 106 tokens kept (18 occur in --vocab-from)", stdout);
        return output;
    }

    /// <summary>HF's WordPiece on one word, written plainly: longest kept prefix first, ## after the first piece,
    /// [UNK] for the whole word when some position matches nothing.</summary>
    static List<string> GreedyWordPiece(string word, HashSet<string> vocab)
    {
        var pieces = new List<string>();
        for (int start = 0; start < word.Length;)
        {
            int end = word.Length;
            string? match = null;
            for (; end > start; end--)
            {
                string piece = (start > 0 ? "##" : "") + word[start..end];
                if (vocab.Contains(piece)) { match = piece; break; }
            }
            if (match is null) return ["[UNK]"];
            pieces.Add(match);
            start = end;
        }
        return pieces;
    }

    [Fact]
    public void PrunedTokenizerIsGreedyWordPieceOverTheKeptTokens()
    {
        var pruned = BertCheckpoint.Load(Pruned(63)).RequireTokenizer();
        var full = BertCheckpoint.Load(EngineFixtures.TinyBertGated).RequireTokenizer();
        var kept = pruned.Tokens.ToHashSet();
        Assert.Equal(63, kept.Count);
        Assert.Subset(full.Tokens.ToHashSet(), kept);
        foreach (var special in new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }) Assert.Contains(special, kept);
        // Every word of the sample is kept whole; a word never seen (e.g. "happy") is not.
        foreach (var word in Sample.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
            Assert.Contains(word, kept);
        Assert.DoesNotContain("happy", kept);
        foreach (var word in Words)
            Assert.Equal(GreedyWordPiece(word, kept), pruned.Tokenize(word).Select(p => p.Token));
    }

    [Fact]
    public void PrunedModelAnswersTextsOfKeptTokensExactlyAsTheFullModel()
    {
        string dir = Pruned(63);
        Assert.Equal(63, BertCheckpoint.Load(dir).Config.VocabSize);
        using var full = TextClassifier.Load(EngineFixtures.TinyBertGated);
        using var pruned = TextClassifier.Load(dir);
        foreach (var text in new[] { "the cat sat on the mat .", "a big red house", "the bird flew under the tree !" })
        {
            var (a, b) = (full.Classify(text), pruned.Classify(text));
            Assert.Equal(a.Logits, b.Logits);
            Assert.Equal(a.KeptTokens, b.KeptTokens);
        }
        // A pruned word splits into other pieces: the answer may change, the run must not fail.
        Assert.Equal(["[UNK]", "h", "##a"], BertCheckpoint.Load(dir).RequireTokenizer().Tokenize("happy ha")
            .Select(p => p.Token).Take(3));
        Assert.Equal(3, pruned.Classify("happy cat").Logits.Length);
    }

    [Fact]
    public void EachSourceWeighsTheSameHoweverLongItIs()
    {
        var tokenizer = BertCheckpoint.Load(EngineFixtures.TinyBertGated).RequireTokenizer();
        // "cat" is half of a short source; "dog" 1 in 100 tokens of a long one, though 5 times as frequent overall.
        string[] shortSource = ["cat the"], longSource = [.. Enumerable.Repeat("dog " + string.Join(' ',
            Enumerable.Repeat("the", 19)), 5)];
        var frequency = VocabularyPruning.Frequencies(tokenizer, [shortSource, longSource]);
        int cat = tokenizer.TokenToId("cat")!.Value, dog = tokenizer.TokenToId("dog")!.Value;
        Assert.Equal(0.5, frequency[cat], 12);
        Assert.Equal(0.05, frequency[dog], 12);
        Assert.Equal(0.5 + 0.95, frequency[tokenizer.TokenToId("the")!.Value], 12);
    }

    [Fact]
    public void QuantizeF16StoresTheInt8MatricesOfQuantizeAndTheRestRoundedToHalfPrecision()
    {
        string int8 = _dir.File("int8"), int8F16 = _dir.File("int8-f16");
        foreach (var (output, extra) in new[] { (int8, Array.Empty<string>()), (int8F16, ["--f16"]) })
        {
            var (code, _, stderr) = CliRun.Run(["quantize", "--model", EngineFixtures.TinyBertGated, "--out", output,
                .. extra]);
            Assert.True(code == 0, stderr);
        }
        using var plain = SafeTensorsFile.Open(Path.Combine(int8, "model.safetensors"));
        using var half = SafeTensorsFile.Open(Path.Combine(int8F16, "model.safetensors"));
        Assert.Equal(plain.Tensors.Keys.Order(), half.Tensors.Keys.Order());
        foreach (var info in half.Tensors.Values)
        {
            if (info.DType == "I8")
            {
                Assert.True(BertWeights.IsInt8(info.Name));
                var (a, b) = (new sbyte[info.ElementCount], new sbyte[info.ElementCount]);
                plain.ReadInt8(info.Name, a);
                half.ReadInt8(info.Name, b);
                Assert.Equal(a, b);
                continue;
            }
            var expected = plain.ReadFloats(info.Name);
            if (info.Name.EndsWith("_scale")) Assert.Equal("F32", info.DType);
            else
            {
                Assert.Equal("F16", info.DType);
                for (int i = 0; i < expected.Length; i++) expected[i] = (float)(Half)expected[i];
            }
            Assert.Equal(expected, half.ReadFloats(info.Name));
        }
        Assert.True(new FileInfo(Path.Combine(int8F16, "model.safetensors")).Length
            < new FileInfo(Path.Combine(int8, "model.safetensors")).Length);
        using var engine = BertEngine.Load(BertCheckpoint.Load(int8F16));
        Assert.Equal(Precision.Int8, engine.Precision);
    }

    [Theory]
    [InlineData("--vocab-size 60", "--vocab-size and --vocab-from go together")]
    [InlineData("--vocab-size 10 --vocab-from SAMPLE", "needs at least")]
    [InlineData("--vocab-size 106 --vocab-from SAMPLE", "not below the model's 106 tokens")]
    public void BadVocabularyOptionsAreUsageErrors(string options, string message)
    {
        string sample = _dir.File("sample.txt");
        File.WriteAllText(sample, Sample);
        var (code, _, stderr) = CliRun.Run(["export", "--model", EngineFixtures.TinyBertGated, "--out",
            _dir.File("out"), .. options.Replace("SAMPLE", sample).Split(' ')]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(message, stderr.Split('\n')[0]);
        Assert.False(Directory.Exists(_dir.File("out")));
    }

    [Fact]
    public void AMissingVocabularySourceIsNamedBeforeAnyWork()
    {
        var (code, _, stderr) = CliRun.Run("export", "--model", EngineFixtures.TinyBertGated, "--out", _dir.File("out"),
            "--vocab-size", "70", "--vocab-from", "/nonexistent/texts");
        Assert.NotEqual(0, code);
        Assert.Equal("error: /nonexistent/texts: --vocab-from file or directory not found", stderr.TrimEnd());
        Assert.False(Directory.Exists(_dir.File("out")));
    }
}
