using System.Text;
using EdgeBert.Model;

namespace EdgeBert.Training;

/// <summary>Settings of WordPiece vocabulary training.</summary>
public sealed record WordPieceTrainerOptions
{
    /// <summary>Upper bound on the number of entries, special tokens included.</summary>
    public int VocabSize { get; init; } = 8192;

    /// <summary>A character or a pair seen fewer times than this in the corpus (a word's repeats
    /// counted) never becomes an entry. Words holding a dropped character are left out of training,
    /// since the tokenizer turns them into [UNK] whatever the vocabulary.</summary>
    public int MinFrequency { get; init; } = 10;

    /// <summary>The pre-tokenization (lowercasing, accent stripping) and special-token names of the
    /// tokenizer that will use the vocabulary.</summary>
    public BertTokenizerOptions Tokenizer { get; init; } = new();
}

/// <summary>Where training is: Phase "merges" counts merges done out of the merges planned.</summary>
public readonly record struct WordPieceProgress(string Phase, long Done, long Total);

/// <summary>A trained vocabulary: Tokens in id order (the lines of vocab.txt).</summary>
public sealed record WordPieceVocabulary(IReadOnlyList<string> Tokens, int SpecialCount, int AlphabetSize,
                                         int MergeCount, IReadOnlyList<string> DroppedCharacters,
                                         long WordOccurrences, long UntrainableWordOccurrences);

/// <summary>WordPiece vocabulary training in the form of the HuggingFace tokenizers' WordPiece trainer:
/// byte-pair-encoding merges over word-internal symbols, where a word starts as its first character
/// followed by its other characters with the "##" continuation prefix (h ##e ##l ##l ##o), and each
/// step merges the adjacent pair seen most often in the corpus into one new entry (a + b without b's
/// "##"). Frequency rather than the likelihood score freq(ab) / (freq(a) freq(b)) is used because the
/// counts of all other pairs stay valid after a merge, so they can be updated only in the words the
/// merge touches. Ties go to the ordinally smaller pair (a, then b), so the result depends only on the
/// word counts: not on file order, dictionary iteration order or threads.
///
/// Vocabulary layout: [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0..4), then every character kept (seen at
/// least MinFrequency times) in both forms, bare and "##", so that any word of kept characters
/// tokenizes without [UNK]; then the merged pieces in merge order until VocabSize entries.
/// Words are produced by the tokenizer's own basic step (<see cref="BertWordPieceTokenizer.BasicWords"/>).</summary>
public sealed class WordPieceTrainer(WordPieceTrainerOptions options)
{
    public const string ContinuationPrefix = "##";

    readonly Dictionary<string, long> _wordCounts = new(StringComparer.Ordinal);

    public WordPieceTrainerOptions Options { get; } = options;
    public int UniqueWords => _wordCounts.Count;
    /// <summary>Each distinct word counted so far and how often it occurred.</summary>
    public IReadOnlyDictionary<string, long> WordCounts => _wordCounts;
    public long WordOccurrences { get; private set; }

    /// <summary>The special tokens in id order 0..4, with the names the tokenizer options give them.</summary>
    public IReadOnlyList<string> SpecialTokens =>
        new[] { Options.Tokenizer.PaddingToken, Options.Tokenizer.UnknownToken, Options.Tokenizer.ClassificationToken,
                Options.Tokenizer.SeparatorToken, Options.Tokenizer.MaskToken }.Distinct().ToArray();

    /// <summary>Counts the words of a text.</summary>
    public void AddText(string text)
    {
        foreach (var word in BertWordPieceTokenizer.BasicWords(text, Options.Tokenizer))
        {
            _wordCounts[word] = _wordCounts.GetValueOrDefault(word) + 1;
            WordOccurrences++;
        }
    }

    /// <summary>Counts the words of a UTF-8 text file, line by line (a line break is whitespace to the
    /// basic tokenizer, so this gives the words of the whole text).</summary>
    public void AddFile(string path)
    {
        using var reader = new StreamReader(path, new UTF8Encoding(false, true),
            detectEncodingFromByteOrderMarks: true);
        try
        {
            for (string? line; (line = reader.ReadLine()) is not null;) AddText(line);
        }
        catch (DecoderFallbackException) { throw new InvalidDataException($"{path}: not valid UTF-8"); }
    }

    /// <summary>The *.txt files directly in <paramref name="directory"/>, in ordinal order.</summary>
    public static string[] CorpusFiles(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{directory}: corpus directory not found");
        var files = Directory.GetFiles(directory, "*.txt", SearchOption.TopDirectoryOnly);
        if (files.Length == 0) throw new InvalidDataException($"{directory}: no .txt files in the corpus directory");
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    public WordPieceVocabulary Train(Action<WordPieceProgress>? progress = null)
    {
        var specials = SpecialTokens;
        int minFrequency = Math.Max(1, Options.MinFrequency);
        var words = _wordCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray();

        // Alphabet: characters by corpus frequency.
        var charCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (word, count) in words)
            foreach (var rune in word.EnumerateRunes())
            {
                string c = rune.ToString();
                charCounts[c] = charCounts.GetValueOrDefault(c) + count;
            }
        var alphabet = charCounts.Where(kv => kv.Value >= minFrequency).Select(kv => kv.Key)
            .Order(StringComparer.Ordinal).ToList();
        var dropped = charCounts.Where(kv => kv.Value < minFrequency).Select(kv => kv.Key)
            .Order(StringComparer.Ordinal).ToList();
        int required = specials.Count + 2 * alphabet.Count;
        if (Options.VocabSize < required)
            throw new ArgumentException($"vocabulary size {Options.VocabSize} is too small: " +
                                        $"the {specials.Count} special tokens and " +
                                        $"{alphabet.Count} characters (bare and ##) need {required}");

        var symbols = new SymbolTable();
        var tokens = new List<string>(specials);
        foreach (var c in alphabet) tokens.Add(symbols.Intern(c).Text);
        foreach (var c in alphabet) tokens.Add(symbols.Intern(ContinuationPrefix + c).Text);

        // Words as symbol sequences; a word the tokenizer would turn into [UNK] anyway is left out.
        var kept = new HashSet<string>(alphabet, StringComparer.Ordinal);
        var sequences = new List<int[]>();
        var lengths = new List<int>();
        var counts = new List<long>();
        long untrainable = 0;
        foreach (var (word, count) in words)
        {
            var chars = word.EnumerateRunes().Select(r => r.ToString()).ToList();
            if (chars.Count > BertWordPieceTokenizer.MaxCharsPerWord || !chars.All(kept.Contains))
            {
                untrainable += count;
                continue;
            }
            var seq = new int[chars.Count];
            for (int i = 0; i < seq.Length; i++) seq[i] = symbols.Id(i == 0 ? chars[i] : ContinuationPrefix + chars[i]);
            sequences.Add(seq);
            lengths.Add(seq.Length);
            counts.Add(count);
        }

        int mergesPlanned = Options.VocabSize - tokens.Count;
        var merger = new PairMerger(symbols, sequences, lengths.ToArray(), counts.ToArray());
        progress?.Invoke(new WordPieceProgress("merges", 0, mergesPlanned));
        while (tokens.Count < Options.VocabSize && merger.TryMergeBest(minFrequency, out var merged, out bool isNew))
        {
            // A piece reached by two merge paths (t + ##he, th + ##e) is one entry.
            if (isNew) tokens.Add(merged);
            progress?.Invoke(new WordPieceProgress("merges", tokens.Count - specials.Count - 2 * alphabet.Count,
                mergesPlanned));
        }
        return new WordPieceVocabulary(tokens, specials.Count, alphabet.Count, tokens.Count - required, dropped,
            WordOccurrences, untrainable);
    }

    /// <summary>Writes one token per line (ids = line numbers), atomically (<see cref="AtomicFile"/>).</summary>
    public static void WriteVocab(string path, IEnumerable<string> tokens)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true);
            w.NewLine = "\n";
            foreach (var t in tokens) w.WriteLine(t);
        });
    }

    /// <summary>Strings and their ids; ids only grow.</summary>
    sealed class SymbolTable
    {
        readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
        public readonly List<string> Texts = new();

        public (int Id, string Text) Intern(string text)
        {
            if (!_ids.TryGetValue(text, out int id))
            {
                id = Texts.Count;
                _ids[text] = id;
                Texts.Add(text);
            }
            return (id, text);
        }

        public int Id(string text) => _ids[text];
        public bool Contains(string text) => _ids.ContainsKey(text);
    }

    /// <summary>The merge loop: pair counts weighted by word frequency, the words each pair occurs in,
    /// and a max-heap of (count, pair) entries. A count change pushes a new entry instead of updating the
    /// old one; an entry whose count no longer matches is stale and skipped when it surfaces.</summary>
    sealed class PairMerger
    {
        readonly SymbolTable _symbols;
        readonly List<int[]> _words;
        readonly int[] _lengths;
        readonly long[] _counts;
        readonly Dictionary<long, long> _pairCounts = new();
        // May list a word twice or list words the pair has left; checked when used.
        readonly Dictionary<long, List<int>> _pairWords = new();
        readonly PriorityQueue<long, (long Count, long Pair)> _heap;
        readonly int[] _lastVisit;

        public PairMerger(SymbolTable symbols, List<int[]> words, int[] lengths, long[] counts)
        {
            _symbols = symbols;
            _words = words;
            _lengths = lengths;
            _counts = counts;
            _lastVisit = new int[words.Count];
            _heap = new PriorityQueue<long, (long Count, long Pair)>(
                Comparer<(long Count, long Pair)>.Create(ComparePriority));
            for (int w = 0; w < words.Count; w++)
                for (int i = 0; i + 1 < lengths[w]; i++)
                {
                    long pair = Key(words[w][i], words[w][i + 1]);
                    _pairCounts[pair] = _pairCounts.GetValueOrDefault(pair) + counts[w];
                    AddWord(pair, w);
                }
            foreach (var (pair, count) in _pairCounts) _heap.Enqueue(pair, (count, pair));
        }

        static long Key(int a, int b) => ((long)a << 32) | (uint)b;
        static int First(long pair) => (int)(pair >> 32);
        static int Second(long pair) => (int)(uint)pair;

        /// <summary>Higher count first, then the ordinally smaller (a, b) by text.</summary>
        int ComparePriority((long Count, long Pair) x, (long Count, long Pair) y)
        {
            if (x.Count != y.Count) return y.Count.CompareTo(x.Count);
            int c = string.CompareOrdinal(_symbols.Texts[First(x.Pair)], _symbols.Texts[First(y.Pair)]);
            return c != 0 ? c : string.CompareOrdinal(_symbols.Texts[Second(x.Pair)], _symbols.Texts[Second(y.Pair)]);
        }

        void AddWord(long pair, int word)
        {
            if (!_pairWords.TryGetValue(pair, out var list)) _pairWords[pair] = list = new List<int>();
            if (list.Count == 0 || list[^1] != word) list.Add(word);
        }

        public bool TryMergeBest(int minFrequency, out string merged, out bool isNew)
        {
            merged = "";
            isNew = false;
            while (_heap.TryDequeue(out long pair, out var priority))
            {
                if (_pairCounts.GetValueOrDefault(pair) != priority.Count) continue;
                if (priority.Count < minFrequency) return false;
                int a = First(pair), b = Second(pair);
                string bText = _symbols.Texts[b];
                merged = _symbols.Texts[a] + bText[ContinuationPrefix.Length..];
                isNew = !_symbols.Contains(merged);
                Merge(pair, a, b, _symbols.Intern(merged).Id);
                return true;
            }
            return false;
        }

        int _visit;

        void Merge(long pair, int a, int b, int ab)
        {
            _visit++;
            var delta = new Dictionary<long, long>();
            foreach (int w in _pairWords[pair])
            {
                if (_lastVisit[w] == _visit) continue;
                _lastVisit[w] = _visit;
                var seq = _words[w];
                int n = _lengths[w];
                long count = _counts[w];
                bool found = false;
                for (int i = 0; i + 1 < n && !found; i++) found = seq[i] == a && seq[i + 1] == b;
                if (!found) continue;

                for (int i = 0; i + 1 < n; i++) Add(delta, Key(seq[i], seq[i + 1]), -count);
                int m = 0;
                for (int i = 0; i < n; i++)
                {
                    if (i + 1 < n && seq[i] == a && seq[i + 1] == b) { seq[m++] = ab; i++; }
                    else seq[m++] = seq[i];
                }
                _lengths[w] = m;
                for (int i = 0; i + 1 < m; i++)
                {
                    long p = Key(seq[i], seq[i + 1]);
                    Add(delta, p, count);
                    AddWord(p, w);
                }
            }
            _pairWords.Remove(pair);
            foreach (var (p, d) in delta)
            {
                if (d == 0) continue;
                long updated = _pairCounts.GetValueOrDefault(p) + d;
                if (updated == 0) { _pairCounts.Remove(p); _pairWords.Remove(p); continue; }
                _pairCounts[p] = updated;
                _heap.Enqueue(p, (updated, p));
            }
        }

        static void Add(Dictionary<long, long> delta, long key, long value) =>
            delta[key] = delta.GetValueOrDefault(key) + value;
    }
}
