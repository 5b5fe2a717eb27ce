using EdgeBert.Cli;
using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Tests;

public class WordPieceTrainerTests
{
    static readonly string[] Specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    /// <summary>Small crafted corpus: a very frequent word, shared stems, accented and capitalised
    /// forms, repeated letters (##l ##l ##l) and punctuation.</summary>
    static readonly string[] CraftedFiles =
    [
        string.Concat(Enumerable.Repeat("The cat sat on the mat. The hat is on the cat! ", 40)),
        string.Concat(Enumerable.Repeat("Café CAFÉ café, naïve résumé; hello helllo hellllo. ", 12)),
        string.Concat(Enumerable.Repeat("running runner runs ran; jumping jumper jumps. The end? ", 15)),
    ];

    static string WriteCorpus(ModelTestFiles.TempDir dir, string[] texts, string[]? names = null)
    {
        string corpus = Path.Combine(dir.Path, "corpus");
        Directory.CreateDirectory(corpus);
        for (int i = 0; i < texts.Length; i++)
            File.WriteAllText(Path.Combine(corpus, names?[i] ?? $"part{i}.txt"), texts[i]);
        return corpus;
    }

    static WordPieceVocabulary Train(IEnumerable<string> texts, int size, int minFrequency = 1)
    {
        var trainer = new WordPieceTrainer(new WordPieceTrainerOptions { VocabSize = size,
            MinFrequency = minFrequency });
        foreach (var t in texts) trainer.AddText(t);
        return trainer.Train();
    }

    static BertWordPieceTokenizer Tokenizer(ModelTestFiles.TempDir dir, IReadOnlyList<string> tokens)
    {
        string path = dir.File("vocab.txt");
        WordPieceTrainer.WriteVocab(path, tokens);
        return BertWordPieceTokenizer.Load(path);
    }

    [Fact]
    public void CliWritesSpecialsFirstAndTwoRunsAreByteIdentical()
    {
        using var dir = new ModelTestFiles.TempDir();
        string corpus = WriteCorpus(dir, CraftedFiles);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, CliApp.Run(["vocab", "--corpus", corpus, "--size", "100", "--min-frequency", "1", "--out",
            dir.File("a.txt")], stdout, stderr));
        Assert.Equal(0, CliApp.Run(["vocab", "--corpus", corpus, "--size", "100", "--min-frequency", "1", "--out",
            dir.File("b.txt")], stdout, stderr));
        Assert.Equal(File.ReadAllBytes(dir.File("a.txt")), File.ReadAllBytes(dir.File("b.txt")));
        var lines = File.ReadAllLines(dir.File("a.txt"));
        Assert.Equal(Specials, lines.Take(5));
        Assert.Equal(100, lines.Length);
        Assert.Equal(lines.Length, lines.Distinct().Count());
        Assert.Contains("0.0000%", stdout.ToString());
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }

    [Fact]
    public void ResultDoesNotDependOnTextOrFileOrder()
    {
        var forward = Train(CraftedFiles, 100);
        var backward = Train(CraftedFiles.Reverse(), 100);
        Assert.Equal(forward.Tokens, backward.Tokens);

        // Files named so that the ordinal order is the reverse of the order they are added in.
        using var dir = new ModelTestFiles.TempDir();
        string corpus = WriteCorpus(dir, CraftedFiles, ["c.txt", "b.txt", "a.txt"]);
        var trainer = new WordPieceTrainer(new WordPieceTrainerOptions { VocabSize = 100, MinFrequency = 1 });
        foreach (var f in WordPieceTrainer.CorpusFiles(corpus).Reverse()) trainer.AddFile(f);
        Assert.Equal(forward.Tokens, trainer.Train().Tokens);
    }

    [Fact]
    public void EveryCorpusWordRoundTripsWithoutUnknown()
    {
        using var dir = new ModelTestFiles.TempDir();
        foreach (int size in new[] { 80, 150, 400 })
        {
            var vocab = Train(CraftedFiles, size);
            Assert.True(vocab.Tokens.Count <= size);
            var tokenizer = Tokenizer(dir, vocab.Tokens);
            foreach (var text in CraftedFiles)
            {
                var pieces = tokenizer.Tokenize(text);
                Assert.DoesNotContain(pieces, p => p.Id == tokenizer.UnknownId);
                // The pieces of each word spell the word (lowercased, accents stripped).
                string joined = string.Concat(pieces.Select(p => p.Token.StartsWith("##") ? p.Token[2..]
                    : " " + p.Token));
                Assert.Equal(string.Join(" ", BertWordPieceTokenizer.BasicWords(text, new BertTokenizerOptions())),
                    joined.TrimStart());
            }
        }
    }

    [Fact]
    public void FrequentWordBecomesOneTokenAndTextIsLowercasedAndAccentStripped()
    {
        using var dir = new ModelTestFiles.TempDir();
        var vocab = Train(CraftedFiles, 150);
        Assert.DoesNotContain(vocab.Tokens.Skip(5), t => t.Any(char.IsUpper));
        Assert.DoesNotContain(vocab.Tokens, t => t.Contains('é') || t.Contains('ï'));
        var tokenizer = Tokenizer(dir, vocab.Tokens);
        Assert.Equal(["the"], tokenizer.Tokenize("The").Select(p => p.Token));
        Assert.Equal(["cafe"], tokenizer.Tokenize("CAFÉ").Select(p => p.Token));
        Assert.Equal(["cat"], tokenizer.Tokenize("cat").Select(p => p.Token));
    }

    [Fact]
    public void RareCharactersAreDroppedAndTheirWordsBecomeUnknown()
    {
        var texts = new[] { string.Concat(Enumerable.Repeat("abc abd bcd ", 5)) + "x→y" };
        var vocab = Train(texts, 60, minFrequency: 2);
        Assert.Equal(["x", "y", "→"], vocab.DroppedCharacters);
        Assert.Equal(1, vocab.UntrainableWordOccurrences);
        Assert.Equal(Specials.Length + 2 * 4, vocab.Tokens.Count - vocab.MergeCount);
        Assert.Contains("##d", vocab.Tokens);
        // Merges stop when the best pair is seen fewer than MinFrequency times.
        Assert.True(vocab.Tokens.Count < 60);
    }

    /// <summary>The incremental merge loop against a direct implementation that recounts every pair
    /// before each merge, on random corpora with many ties and merge-path collisions.</summary>
    [Fact]
    public void MatchesNaiveRecountingTrainer()
    {
        for (int seed = 0; seed < 25; seed++)
        {
            var random = new Random(seed);
            string letters = "abcde"[..(2 + random.Next(4))];
            var words = Enumerable.Range(0, 30).Select(_ => new string(Enumerable.Range(0, 1 + random.Next(7))
                .Select(_ => letters[random.Next(letters.Length)]).ToArray())).ToArray();
            var text = string.Join(" ", Enumerable.Range(0, 300)
                .Select(_ => words[(int)(words.Length * Math.Pow(random.NextDouble(), 2))]));
            int size = 20 + random.Next(60);
            int minFrequency = 1 + random.Next(3);
            var fast = Train([text], size, minFrequency);
            Assert.Equal(NaiveTrain(text, size, minFrequency), fast.Tokens);
        }
    }

    static List<string> NaiveTrain(string text, int size, int minFrequency)
    {
        var counts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).GroupBy(w => w)
            .ToDictionary(g => g.Key, g => (long)g.Count());
        var charCounts = counts.SelectMany(kv => kv.Key.Select(c => (c, kv.Value))).GroupBy(x => x.c)
            .ToDictionary(g => g.Key, g => g.Sum(x => x.Value));
        var kept = charCounts.Where(kv => kv.Value >= minFrequency).Select(kv => kv.Key).ToHashSet();
        var chars = kept.Select(c => c.ToString()).Order(StringComparer.Ordinal).ToList();
        var vocab = new List<string>(Specials);
        vocab.AddRange(chars);
        vocab.AddRange(chars.Select(c => "##" + c));
        var words = counts.Where(kv => kv.Key.All(kept.Contains))
            .Select(kv => (Pieces: kv.Key.Select((c, i) => i == 0 ? c.ToString() : "##" + c).ToList(), Count: kv.Value))
            .ToList();
        while (vocab.Count < size)
        {
            var pairs = new Dictionary<(string, string), long>();
            foreach (var (pieces, count) in words)
                for (int i = 0; i + 1 < pieces.Count; i++)
                    pairs[(pieces[i], pieces[i + 1])] = pairs.GetValueOrDefault((pieces[i], pieces[i + 1])) + count;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal)
                .ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First();
            if (best.Value < minFrequency) break;
            var (a, b) = best.Key;
            string merged = a + b[2..];
            if (!vocab.Contains(merged)) vocab.Add(merged);
            foreach (var (pieces, _) in words)
                for (int i = 0; i + 1 < pieces.Count; i++)
                    if (pieces[i] == a && pieces[i + 1] == b) { pieces[i] = merged; pieces.RemoveAt(i + 1); }
        }
        return vocab;
    }

    [Fact]
    public void CliReportsBadInputOnOneLine()
    {
        using var dir = new ModelTestFiles.TempDir();
        string corpus = WriteCorpus(dir, CraftedFiles);
        string empty = Path.Combine(dir.Path, "empty");
        Directory.CreateDirectory(empty);
        (int Code, string Error) Run(params string[] args)
        {
            var stderr = new StringWriter();
            int code = CliApp.Run(args, new StringWriter(), stderr);
            return (code, stderr.ToString());
        }
        var missing = Run("vocab", "--corpus", Path.Combine(dir.Path, "nope"), "--out", dir.File("v.txt"));
        Assert.Equal(1, missing.Code);
        Assert.StartsWith("error: ", missing.Error);
        Assert.Single(missing.Error.TrimEnd().Split('\n'));
        var noText = Run("vocab", "--corpus", empty, "--out", dir.File("v.txt"));
        Assert.Equal(1, noText.Code);
        Assert.Contains("no .txt files", noText.Error);
        var tooSmall = Run("vocab", "--corpus", corpus, "--size", "20", "--out", dir.File("v.txt"));
        Assert.Equal(1, tooSmall.Code);
        Assert.Contains("too small", tooSmall.Error);
        Assert.False(File.Exists(dir.File("v.txt")));
        Assert.Equal(2, Run("vocab", "--corpus", corpus).Code);
        Assert.Equal(2, Run("vocab", "--corpus", corpus, "--out", dir.File("v.txt"), "--size", "x").Code);
    }

    /// <summary>A vocabulary trained on the first 200k characters of a real book tokenizes that text
    /// with (almost) no [UNK].</summary>
    [Fact]
    public void RealCorpusSliceRoundTripsWithFewUnknowns()
    {
        string book = Path.Combine(SharedData.Directory, "corpus", "gutenberg_01342_pride-and-prejudice.txt");
        var buffer = new char[200_000];
        int read;
        using (var reader = new StreamReader(book)) read = reader.ReadBlock(buffer);
        string text = new(buffer, 0, read);

        var trainer = new WordPieceTrainer(new WordPieceTrainerOptions { VocabSize = 1000 });
        trainer.AddText(text);
        var vocab = trainer.Train();
        Assert.Equal(1000, vocab.Tokens.Count);
        using var dir = new ModelTestFiles.TempDir();
        var tokenizer = Tokenizer(dir, vocab.Tokens);
        var pieces = tokenizer.Tokenize(text);
        int unknown = pieces.Count(p => p.Id == tokenizer.UnknownId);
        Assert.True(unknown < 0.001 * pieces.Count, $"{unknown} [UNK] of {pieces.Count} tokens");
        // Merges shorten the text: fewer tokens than characters by a wide margin.
        Assert.True(pieces.Count < read / 3, $"{pieces.Count} tokens for {read} characters");
    }
}
