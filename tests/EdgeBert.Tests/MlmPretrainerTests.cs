using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Tests;

public class MlmPretrainerTests
{
    /// <summary>A corpus in which every word is predictable from its neighbours.</summary>
    static (string Corpus, string Vocab) MakeCorpus(string dir)
    {
        string corpus = Directory.CreateDirectory(Path.Combine(dir, "corpus")).FullName;
        var sentences = new[] { "the cat sat on the mat .", "a dog ran in the park .", "my bird sang at the window ." };
        var rng = new Random(5);
        File.WriteAllText(Path.Combine(corpus, "a.txt"),
            string.Join(' ', Enumerable.Range(0, 3000).Select(_ => sentences[rng.Next(sentences.Length)])));
        string vocab = Path.Combine(dir, "words.txt");
        var words = sentences.SelectMany(s => s.Split(' ')).Distinct();
        File.WriteAllLines(vocab, new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(words));
        return (corpus, vocab);
    }

    static PretrainOptions Options(string dir, string corpus, string vocab) => new()
    {
        CorpusDirectory = corpus, Vocab = vocab, OutputDirectory = Path.Combine(dir, "out"),
        Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, MaxLength = 32, BatchSize = 16,
        Steps = 400, LearningRate = 3e-3f, Threads = 2, CheckpointMinutes = 1000, HoldOutEvery = 10,
    };

    [Fact]
    public void LearnsAPredictableCorpusAndSavesALoadableModel()
    {
        using var dir = new ModelTestFiles.TempDir();
        var (corpus, vocab) = MakeCorpus(dir.Path);
        var trainer = new MlmPretrainer(Options(dir.Path, corpus, vocab), TextWriter.Null);
        trainer.Run();

        // 20 words: guessing gives 5% and a perplexity of 20, word frequencies alone 13.8; context allows far better.
        var report = Assert.Single(trainer.Reports);
        Assert.True(report.HeldOutAccuracy > 0.3, $"held-out MLM accuracy {report.HeldOutAccuracy}");
        Assert.True(report.HeldOutPerplexity < 10, $"held-out perplexity {report.HeldOutPerplexity}");
        // The model has learned word order: the same tokens in shuffled order are harder to predict.
        Assert.True(report.ShuffledPerplexity > 1.2 * report.HeldOutPerplexity,
            $"perplexity {report.HeldOutPerplexity}, with words shuffled {report.ShuffledPerplexity}");

        var saved = BertCheckpoint.Load(Path.Combine(dir.Path, "out"));
        Assert.NotNull(saved.Weights.MlmHead);
        Assert.NotNull(saved.Tokenizer);
        Assert.Equal(400, TrainerState.Read(Path.Combine(dir.Path, "out", FineTuner.ResumeFolder, "trainer_state.bin"))
            .Moments!.Step);
    }

    [Fact]
    public void InitContinuesFromTheGivenModelNotFromRandomWeights()
    {
        using var dir = new ModelTestFiles.TempDir();
        var (corpus, vocab) = MakeCorpus(dir.Path);
        var first = new MlmPretrainer(Options(dir.Path, corpus, vocab), TextWriter.Null);
        first.Run();

        // One step at learning rate 0: the held-out report (same masks) must be the init's own.
        var frozen = Options(dir.Path, corpus, vocab) with
        {
            Vocab = null, Init = Path.Combine(dir.Path, "out"), OutputDirectory = Path.Combine(dir.Path, "continued"),
            Steps = 1, LearningRate = 0f, Dropout = 0f,
        };
        var continued = new MlmPretrainer(frozen, TextWriter.Null);
        continued.Run();
        Assert.Equal(first.Reports[^1].HeldOutAccuracy, continued.Reports[^1].HeldOutAccuracy);
        Assert.Equal(first.Reports[^1].HeldOutPerplexity, continued.Reports[^1].HeldOutPerplexity, 1e-6);

        var fresh = new MlmPretrainer(Options(dir.Path, corpus,
            vocab) with { OutputDirectory = Path.Combine(dir.Path, "fresh"), Steps = 1, LearningRate = 0f },
            TextWriter.Null);
        fresh.Run();
        Assert.True(fresh.Reports[^1].HeldOutPerplexity > 2 * continued.Reports[^1].HeldOutPerplexity);
    }

    [Fact]
    public void TaskTextAddsEachDistinctSentenceOnce()
    {
        using var dir = new ModelTestFiles.TempDir();
        var (corpus, vocab) = MakeCorpus(dir.Path);
        string tsv = Path.Combine(dir.Path, "train.tsv");
        // 40 copies of one 7-word sentence and one 6-word sentence: 13 words once each, not 286.
        File.WriteAllLines(tsv, new[] { "sentence\tlabel" }
            .Concat(Enumerable.Repeat("the cat sat on the mat .\t1", 40)).Append("a dog ran in the park\t0"));
        long Tokens(PretrainOptions o)
        {
            var log = new StringWriter();
            // Only the first sequence is held out, so the task text lands in the training count.
            new MlmPretrainer(o with { Steps = 1, HoldOutEvery = 1_000_000 }, log).Run();
            var m = System.Text.RegularExpressions.Regex.Match(log.ToString(), @"\((\d+) tokens\)");
            return long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }
        long plain = Tokens(Options(dir.Path, corpus, vocab));
        long withTask = Tokens(Options(dir.Path, corpus, vocab) with
        {
            OutputDirectory = Path.Combine(dir.Path, "task"), TaskText = (GlueTask.Sst2, tsv),
        });
        // 13 word tokens plus [CLS] and [SEP] around the one sequence they make.
        Assert.Equal(plain + 15, withTask);
    }

    [Theory]
    [InlineData("--init", "m", "--vocab", "v.txt")]
    [InlineData("--init", "m", "--layers", "2")]
    [InlineData("--init", "m", "--hidden", "64")]
    [InlineData("--init", "m", "--task-text", "train.tsv")]
    public void ContradictoryPretrainOptionsAreUsageErrors(params string[] options)
    {
        var (code, output, error) = CliRun.Run(["pretrain", "--corpus", ".", "--out", "o", "--steps", "1", .. options]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith("error: ", error);
    }
}
