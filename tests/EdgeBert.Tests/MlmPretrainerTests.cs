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

        var saved = BertCheckpoint.Load(Path.Combine(dir.Path, "out"));
        Assert.NotNull(saved.Weights.MlmHead);
        Assert.NotNull(saved.Tokenizer);
        Assert.Equal(400, TrainerState.Read(Path.Combine(dir.Path, "out", FineTuner.ResumeFolder, "trainer_state.bin")).Moments!.Step);
    }
}
