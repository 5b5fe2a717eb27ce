using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;

namespace EdgeBert.Model;

/// <summary>Tokens, ids and token types of one encoded input: [CLS] A [SEP] (B [SEP]).</summary>
public sealed record TokenizedText(string[] Tokens, int[] InputIds, int[] TokenTypeIds)
{
    /// <summary>The number of tokens.</summary>
    public int Length => InputIds.Length;
}

/// <summary>Tokenizer settings as tokenizer_config.json gives them (HuggingFace defaults otherwise).</summary>
public sealed record BertTokenizerOptions
{
    /// <summary>Lowercase (and by default strip accents) before WordPiece.</summary>
    public bool DoLowerCase { get; init; } = true;
    /// <summary>null: strip accents exactly when lowercasing (HF's default).</summary>
    public bool? StripAccents { get; init; }
    /// <summary>Split CJK characters into words of their own.</summary>
    public bool TokenizeChineseChars { get; init; } = true;
    /// <summary>int.MaxValue when the config gives none (HF then does not truncate by default).</summary>
    public int ModelMaxLength { get; init; } = int.MaxValue;
    /// <summary>The unknown token.</summary>
    public string UnknownToken { get; init; } = "[UNK]";
    /// <summary>The separator token.</summary>
    public string SeparatorToken { get; init; } = "[SEP]";
    /// <summary>The padding token.</summary>
    public string PaddingToken { get; init; } = "[PAD]";
    /// <summary>The classification token that starts every input.</summary>
    public string ClassificationToken { get; init; } = "[CLS]";
    /// <summary>The mask token of masked-language modelling.</summary>
    public string MaskToken { get; init; } = "[MASK]";
}

/// <summary>HuggingFace BertTokenizer, output for output. The text pipeline (special-token split,
/// lowercasing, clean-up, CJK split, accent stripping, punctuation split) is done here, because
/// Microsoft.ML.Tokenizers' BertTokenizer deletes symbols (Sm/Sc/Sk/So such as $ + = ^ | ~ ° © and
/// emoji) that HF keeps, deletes \n \t \r where HF splits on them, glues `_` to words, and cannot
/// strip accents under InvariantGlobalization. Each resulting word then goes to the library's
/// WordPieceTokenizer with pre-tokenization and normalization off, which is HF's greedy
/// longest-match with ## continuations; only the 100-character limit is checked here, because HF
/// counts code points and the library counts UTF-16 units. Thread-safe after construction.</summary>
public sealed class BertWordPieceTokenizer
{
    /// <summary>HF's max_input_chars_per_word: a longer word is one [UNK].</summary>
    public const int MaxCharsPerWord = 100;

    readonly WordPieceTokenizer _wordPiece;
    readonly Dictionary<string, int> _vocab;
    readonly string[] _specialTokens;

    /// <summary>The settings the tokenizer runs with.</summary>
    public BertTokenizerOptions Options { get; }
    /// <summary>Lines of vocab.txt.</summary>
    public int VocabSize { get; }
    /// <summary>The lines of vocab.txt: the token of each id.</summary>
    public IReadOnlyList<string> Tokens { get; }
    /// <summary>model_max_length of tokenizer_config.json, else int.MaxValue.</summary>
    public int ModelMaxLength => Options.ModelMaxLength;
    /// <summary>The id of the unknown token.</summary>
    public int UnknownId { get; }
    /// <summary>The id of [CLS].</summary>
    public int ClsId { get; }
    /// <summary>The id of [SEP].</summary>
    public int SepId { get; }
    /// <summary>The id of [PAD].</summary>
    public int PadId { get; }
    /// <summary>The id of [MASK].</summary>
    public int MaskId { get; }

    BertWordPieceTokenizer(string vocabPath, byte[] vocabBytes, BertTokenizerOptions options)
    {
        // An empty special token matches everywhere: splitting the text on it would never advance.
        var specials = new[] { options.UnknownToken, options.SeparatorToken, options.PaddingToken,
            options.ClassificationToken, options.MaskToken };
        if (specials.Any(string.IsNullOrEmpty))
            throw new ArgumentException("special tokens must not be empty", nameof(options));
        Options = options;
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var lines = new List<string>();
        using (var reader = new StreamReader(new MemoryStream(vocabBytes), new UTF8Encoding(false, true)))
        {
            try
            {
                for (string? line; (line = reader.ReadLine()) is not null;) lines.Add(line);
            }
            catch (DecoderFallbackException) { throw new InvalidDataException($"{vocabPath}: not valid UTF-8"); }
        }
        // HF: id = line number, and a repeated token keeps its last id. The library rejects repeats, so
        // it gets earlier copies as empty lines, which it skips while still counting them.
        for (int i = 0; i < lines.Count; i++) _vocab[lines[i]] = i;
        var libraryLines = lines.Select((t, i) => _vocab[t] == i ? t : "");
        VocabSize = lines.Count;
        Tokens = lines;
        if (!_vocab.TryGetValue(options.UnknownToken, out int unk))
            throw new InvalidDataException($"{vocabPath}: the unknown token '{options.UnknownToken}' is "
                + "not in the vocabulary");
        UnknownId = unk;
        ClsId = _vocab.GetValueOrDefault(options.ClassificationToken, unk);
        SepId = _vocab.GetValueOrDefault(options.SeparatorToken, unk);
        PadId = _vocab.GetValueOrDefault(options.PaddingToken, unk);
        MaskId = _vocab.GetValueOrDefault(options.MaskToken, unk);
        _specialTokens = specials.Distinct().OrderByDescending(t => t.Length).ToArray();
        try
        {
            var libraryVocab = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", libraryLines) + "\n"));
            _wordPiece = WordPieceTokenizer.Create(libraryVocab, new WordPieceOptions
            {
                UnknownToken = options.UnknownToken,
                ContinuingSubwordPrefix = "##",
                // A word of at most 100 code points is at most 200 UTF-16 units; the 100 limit is checked here.
                MaxInputCharsPerWord = 2 * MaxCharsPerWord,
            });
        }
        catch (ArgumentException e) { throw new InvalidDataException($"{vocabPath}: {e.Message}"); }
    }

    /// <summary>Reads vocab.txt and, when given, tokenizer_config.json.</summary>
    public static BertWordPieceTokenizer Load(string vocabPath, string? tokenizerConfigPath = null)
    {
        var options = tokenizerConfigPath is null ? new BertTokenizerOptions() : ReadOptions(tokenizerConfigPath);
        return Load(vocabPath, options);
    }

    /// <summary>Reads vocab.txt and runs with <paramref name="options"/>.</summary>
    public static BertWordPieceTokenizer Load(string vocabPath, BertTokenizerOptions options)
    {
        return new BertWordPieceTokenizer(vocabPath, ModelFiles.ReadBytes(vocabPath, ModelFiles.MaxVocabBytes),
            options);
    }

    /// <summary>A tokenizer from vocab.txt's bytes; <paramref name="name"/> stands for them in error messages.
    /// </summary>
    internal static BertWordPieceTokenizer FromBytes(byte[] vocab, string name, BertTokenizerOptions options) =>
        new(name, vocab, options);

    /// <summary>A tokenizer over <paramref name="tokens"/> (token i has id i), e.g. a pruned vocabulary.</summary>
    public static BertWordPieceTokenizer FromTokens(IEnumerable<string> tokens, BertTokenizerOptions options) =>
        new("vocabulary", Encoding.UTF8.GetBytes(VocabText(tokens)), options);

    /// <summary>vocab.txt's text for <paramref name="tokens"/>: one a line.</summary>
    internal static string VocabText(IEnumerable<string> tokens) => string.Concat(tokens.Select(t => t + "\n"));

    /// <summary>tokenizer_config.json for these options, as HuggingFace's BertTokenizer reads it (without the
    /// file it would not lowercase).</summary>
    public JsonObject OptionsJson(int modelMaxLength) => new()
    {
        ["tokenizer_class"] = "BertTokenizer",
        ["do_lower_case"] = Options.DoLowerCase,
        ["strip_accents"] = Options.StripAccents,
        ["tokenize_chinese_chars"] = Options.TokenizeChineseChars,
        ["model_max_length"] = modelMaxLength,
        ["unk_token"] = Options.UnknownToken,
        ["sep_token"] = Options.SeparatorToken,
        ["pad_token"] = Options.PaddingToken,
        ["cls_token"] = Options.ClassificationToken,
        ["mask_token"] = Options.MaskToken,
    };

    /// <summary>Reads do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length
    /// and the special tokens.</summary>
    public static BertTokenizerOptions ReadOptions(string path) =>
        ParseOptions(ModelFiles.ReadText(path, ModelFiles.MaxJsonBytes), path);

    /// <summary>Parses tokenizer_config.json text; <paramref name="path"/> names it in error messages.</summary>
    internal static BertTokenizerOptions ParseOptions(string json, string path)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message})"); }
        if (root is not JsonObject o) throw new InvalidDataException($"{path}: top level is not a JSON object");
        var d = new BertTokenizerOptions();
        return new BertTokenizerOptions
        {
            DoLowerCase = Bool(o, "do_lower_case", path) ?? d.DoLowerCase,
            StripAccents = Bool(o, "strip_accents", path),
            TokenizeChineseChars = Bool(o, "tokenize_chinese_chars", path) ?? d.TokenizeChineseChars,
            ModelMaxLength = MaxLength(o, path),
            UnknownToken = Token(o, "unk_token", path) ?? d.UnknownToken,
            SeparatorToken = Token(o, "sep_token", path) ?? d.SeparatorToken,
            PaddingToken = Token(o, "pad_token", path) ?? d.PaddingToken,
            ClassificationToken = Token(o, "cls_token", path) ?? d.ClassificationToken,
            MaskToken = Token(o, "mask_token", path) ?? d.MaskToken,
        };
    }

    static bool? Bool(JsonObject o, string key, string path) => o[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.True => true,
        JsonValue v when v.GetValueKind() == JsonValueKind.False => false,
        var n =>
            throw new InvalidDataException($"{path}: key '{key}' must be true, false or null, got {n.ToJsonString()}"),
    };

    static int MaxLength(JsonObject o, string path)
    {
        var n = o["model_max_length"];
        if (n is null) return int.MaxValue;
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue(out double d) || d < 1)
            throw new InvalidDataException($"{path}: key 'model_max_length' must be a positive number, "
                + $"got {n.ToJsonString()}");
        // HF writes 1e30 for "no limit".
        return d >= int.MaxValue ? int.MaxValue : (int)d;
    }

    static string? Token(JsonObject o, string key, string path) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) && s.Length > 0 => s,
        JsonObject t when t["content"] is JsonValue c && c.TryGetValue(out string? s) && s.Length > 0 => s,
        var n => throw new InvalidDataException(
            $"{path}: key '{key}' is not a non-empty token string, got {n.ToJsonString()}"),
    };

    /// <summary>The id of a token, or null when the vocabulary lacks it.</summary>
    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    /// <summary>HF's tokenize(): the word pieces of a text, without [CLS]/[SEP].</summary>
    public List<(string Token, int Id)> Tokenize(string text)
    {
        var pieces = new List<(string, int)>();
        foreach (var (segment, isSpecial) in SplitOnSpecialTokens(text))
        {
            if (isSpecial) { pieces.Add((segment, _vocab.GetValueOrDefault(segment, UnknownId))); continue; }
            foreach (var word in BasicTokenize(segment, Options)) AppendWordPieces(word, pieces);
        }
        return pieces;
    }

    /// <summary>[CLS] A [SEP] or [CLS] A [SEP] B [SEP], truncated to <paramref name="maxLength"/> tokens
    /// (0: the model_max_length of tokenizer_config.json) by HF's longest_first rule: one token at a
    /// time from the end of the longer part, from B when both are equally long.</summary>
    public TokenizedText Encode(string text, string? pair = null, int maxLength = 0)
    {
        if (maxLength <= 0) maxLength = ModelMaxLength;
        int specials = pair is null ? 2 : 3;
        if (maxLength < specials)
            throw new ArgumentException($"maximum length {maxLength} leaves no room for the {specials} special tokens");
        var a = Tokenize(text);
        var b = pair is null ? null : Tokenize(pair);
        int budget = maxLength - specials;
        int lenA = a.Count, lenB = b?.Count ?? 0;
        while (lenA + lenB > budget)
        {
            if (b is null || lenA > lenB) lenA--;
            else lenB--;
        }
        int n = specials + lenA + lenB;
        var tokens = new string[n];
        var ids = new int[n];
        var types = new int[n];
        int k = 0;
        void Add(string token, int id, int type) { tokens[k] = token; ids[k] = id; types[k] = type; k++; }
        Add(Options.ClassificationToken, ClsId, 0);
        for (int i = 0; i < lenA; i++) Add(a[i].Token, a[i].Id, 0);
        Add(Options.SeparatorToken, SepId, 0);
        if (b is not null)
        {
            for (int i = 0; i < lenB; i++) Add(b[i].Token, b[i].Id, 1);
            Add(Options.SeparatorToken, SepId, 1);
        }
        return new TokenizedText(tokens, ids, types);
    }

    /// <summary>HF splits the raw text on its special tokens (longest first) before anything else;
    /// those pass through untouched (not lowercased, not split on their brackets).</summary>
    IEnumerable<(string Segment, bool IsSpecial)> SplitOnSpecialTokens(string text)
    {
        int start = 0, i = 0;
        while (i < text.Length)
        {
            string? hit = null;
            foreach (var t in _specialTokens)
                if (string.CompareOrdinal(text, i, t, 0, t.Length) == 0) { hit = t; break; }
            if (hit is null) { i++; continue; }
            if (i > start) yield return (text[start..i], false);
            yield return (hit, true);
            i += hit.Length;
            start = i;
        }
        if (start < text.Length) yield return (text[start..], false);
    }

    /// <summary>The words HF's BasicTokenizer makes of a text (no special-token split, no word pieces):
    /// what a WordPiece vocabulary for this tokenizer is trained on.</summary>
    public static List<string> BasicWords(string text, BertTokenizerOptions options) =>
        BasicTokenize(text, options).ConvertAll(UnicodeText.ToUtf16);

    /// <summary>HF's BasicTokenizer on one segment: words as code point lists.</summary>
    static List<List<int>> BasicTokenize(string segment, BertTokenizerOptions options)
    {
        var text = UnicodeText.CodePoints(segment);
        // HF lowercases the text character by character before the basic tokenizer runs (and again per word).
        if (options.DoLowerCase) text = UnicodeText.Lower(text);

        // Clean: drop NUL, U+FFFD and control characters; every whitespace becomes a space; space out CJK.
        var cleaned = new List<int>(text.Count);
        foreach (int cp in text)
        {
            if (cp == 0 || cp == 0xFFFD) continue;
            if (IsWhitespace(cp)) { cleaned.Add(' '); continue; }
            if (IsControl(cp)) continue;
            if (options.TokenizeChineseChars && IsCjk(cp))
            {
                cleaned.Add(' '); cleaned.Add(cp); cleaned.Add(' ');
                continue;
            }
            cleaned.Add(cp);
        }
        var normalized = UnicodeText.Nfc(cleaned);

        var words = new List<List<int>>();
        foreach (var token in SplitOnWhitespace(normalized))
        {
            var word = token;
            if (options.DoLowerCase)
            {
                word = UnicodeText.Lower(word);
                if (options.StripAccents != false) word = StripAccents(word);
            }
            else if (options.StripAccents == true) word = StripAccents(word);

            // Every punctuation character is a word of its own.
            var current = new List<int>();
            foreach (int cp in word)
            {
                if (IsPunctuation(cp))
                {
                    if (current.Count > 0) { words.Add(current); current = new List<int>(); }
                    words.Add([cp]);
                }
                else current.Add(cp);
            }
            if (current.Count > 0) words.Add(current);
        }
        // HF joins the words with spaces and splits again: a word NFD left with a space inside splits.
        return words.SelectMany(SplitOnWhitespace).ToList();
    }

    void AppendWordPieces(List<int> word, List<(string, int)> pieces)
    {
        if (word.Count > MaxCharsPerWord) { pieces.Add((Options.UnknownToken, UnknownId)); return; }
        string text = UnicodeText.ToUtf16(word);
        foreach (var t in _wordPiece.EncodeToTokens(text, out _, considerPreTokenization: false,
            considerNormalization: false))
            pieces.Add((t.Value, t.Id));
    }

    static List<int> StripAccents(List<int> word) =>
        UnicodeText.Nfd(word).Where(cp => UnicodeText.Category(cp) != UnicodeCategory.NonSpacingMark).ToList();

    static IEnumerable<List<int>> SplitOnWhitespace(List<int> text)
    {
        var current = new List<int>();
        foreach (int cp in text)
        {
            if (IsSplitSpace(cp))
            {
                if (current.Count > 0) { yield return current; current = new List<int>(); }
            }
            else current.Add(cp);
        }
        if (current.Count > 0) yield return current;
    }

    /// <summary>Python's str.split() separators (str.isspace) that can survive cleaning: Zs, line and
    /// paragraph separators.</summary>
    static bool IsSplitSpace(int cp) => cp < 0x10000 && char.IsWhiteSpace((char)cp);

    /// <summary>HF _is_whitespace: space, \t, \n, \r and category Zs.</summary>
    static bool IsWhitespace(int cp) => cp is ' ' or '\t' or '\n' or '\r'
        || UnicodeText.Category(cp) == UnicodeCategory.SpaceSeparator;

    /// <summary>HF _is_control: any category C* except \t \n \r (handled as whitespace before).</summary>
    static bool IsControl(int cp) => UnicodeText.Category(cp) is UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

    /// <summary>HF _is_punctuation: all non-alphanumeric printable ASCII, and Unicode categories P*.</summary>
    static bool IsPunctuation(int cp)
    {
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return UnicodeText.Category(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>The CJK Unified Ideograph blocks HF spaces out (not Hangul, Hiragana or Katakana).</summary>
    static bool IsCjk(int cp) => cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
        or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
        or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
