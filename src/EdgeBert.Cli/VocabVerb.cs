using System.Diagnostics;
using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Cli;

/// <summary>`edgebert vocab --corpus DIR [--size 8192] [--min-frequency N] --out vocab.txt`: trains a
/// WordPiece vocabulary for the project's uncased BERT tokenizer and checks it round-trips the corpus.</summary>
static class VocabVerb
{
    public static void Register(List<CliApp.Verb> verbs) =>
        verbs.Add(new CliApp.Verb("vocab", "train a WordPiece vocabulary (vocab.txt) on a folder of .txt files",
            "edgebert vocab --corpus DIR [--size 8192] [--min-frequency 10] --out vocab.txt\n" +
            "  Lowercases and strips accents as the uncased tokenizer does; writes [PAD] [UNK] [CLS] [SEP] [MASK]\n" +
            "  (ids 0-4), every character seen at least --min-frequency times (bare and ##), then merged pieces\n" +
            "  up to --size entries. Deterministic. Progress goes to stderr.", Run));

    static int Run(ParsedArgs a, TextWriter o)
    {
        string corpus = a.RequiredString("corpus");
        string output = a.RequiredString("out");
        var defaults = new WordPieceTrainerOptions();
        int size = a.Int("size", defaults.VocabSize, min: 1);
        int minFrequency = a.Int("min-frequency", defaults.MinFrequency, min: 1);
        a.RejectUnknown();
        var files = WordPieceTrainer.CorpusFiles(corpus);
        string? outDir = Path.GetDirectoryName(Path.GetFullPath(output));
        if (outDir is not null && !Directory.Exists(outDir))
            throw new DirectoryNotFoundException($"{outDir}: output directory not found");

        var clock = Stopwatch.StartNew();
        var trainer = new WordPieceTrainer(defaults with { VocabSize = size, MinFrequency = minFrequency });
        var reading = ProgressBar.OnStandardError("reading", files.Length);
        reading.Report(0);
        for (int i = 0; i < files.Length; i++)
        {
            trainer.AddFile(files[i]);
            reading.Report(i + 1);
        }
        double readSeconds = clock.Elapsed.TotalSeconds;

        ProgressBar? merging = null;
        var vocab = trainer.Train(p =>
        {
            merging ??= ProgressBar.OnStandardError(p.Phase, p.Total);
            merging.Report(p.Done);
        });
        merging?.Complete();
        double trainSeconds = clock.Elapsed.TotalSeconds - readSeconds;
        WordPieceTrainer.WriteVocab(output, vocab.Tokens);

        o.WriteLine($"wrote {vocab.Tokens.Count} entries to {output}: {vocab.SpecialCount} special, " +
                    $"{vocab.AlphabetSize} characters (x2 with ##), {vocab.MergeCount} merged pieces");
        o.WriteLine($"corpus: {files.Length} files, {trainer.WordOccurrences} words, {trainer.UniqueWords} distinct; " +
                    $"read in {readSeconds:F1} s, trained in {trainSeconds:F1} s");
        if (vocab.DroppedCharacters.Count > 0)
            o.WriteLine($"dropped {vocab.DroppedCharacters.Count} characters seen fewer than {minFrequency} times: " +
                        string.Join(" ", vocab.DroppedCharacters.Take(40)) +
                        (vocab.DroppedCharacters.Count > 40 ? " ..." : ""));
        var (tokens, unknown) = RoundTrip(trainer, output);
        o.WriteLine("round trip through the tokenizer: " +
                    $"{(double)tokens / Math.Max(1, trainer.WordOccurrences):F3} tokens per word, " +
                    $"{unknown} [UNK] of {tokens} tokens ({100.0 * unknown / Math.Max(1, tokens):F4}%)");
        return 0;
    }

    /// <summary>Tokenizes every distinct corpus word with the written vocabulary, weighted by its count.</summary>
    static (long Tokens, long Unknown) RoundTrip(WordPieceTrainer trainer, string vocabPath)
    {
        var tokenizer = BertWordPieceTokenizer.Load(vocabPath, trainer.Options.Tokenizer);
        long tokens = 0, unknown = 0;
        foreach (var (word, count) in trainer.WordCounts)
            foreach (var (_, id) in tokenizer.Tokenize(word))
            {
                tokens += count;
                if (id == tokenizer.UnknownId) unknown += count;
            }
        return (tokens, unknown);
    }
}
