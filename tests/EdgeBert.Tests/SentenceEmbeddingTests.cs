using System.Text.Json.Nodes;
using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>`edgebert import` then `edgebert embed` on the tiny ONNX fixture: the embedding is the L2-normalised
/// mean of torch's float64 last hidden states.</summary>
public class SentenceEmbeddingTests
{
    [Fact]
    public void PoolsMeanOrClsAndNormalises()
    {
        float[] hidden = [1, 2, 3, 6];
        Assert.Equal([2f, 4f], SentenceEmbedding.Pool(hidden, 2, Pooling.Mean, normalize: false));
        Assert.Equal([1f, 2f], SentenceEmbedding.Pool(hidden, 2, Pooling.Cls, normalize: false));
        Assert.Equal([0.6f, 0.8f], SentenceEmbedding.Pool([3, 4, 3, 4], 2, Pooling.Mean, normalize: true));
        Assert.Equal([0f, 0f], SentenceEmbedding.Pool([0, 0], 2, Pooling.Mean, normalize: true));
        Assert.Throws<ArgumentException>(() => SentenceEmbedding.Pool([1, 2, 3], 2, Pooling.Mean, true));
    }

    [Fact]
    public void ImportThenEmbedMatchesTorch()
    {
        string fixtures = Path.Combine(ModelTestFiles.Fixtures, "onnx_tiny");
        string model = Path.Combine(Path.GetTempPath(), $"edgebert-embed-{Environment.ProcessId}");
        try
        {
            var imported = CliRun.Run("import", "--onnx", Path.Combine(fixtures, "anonymous.onnx"), "--vocab",
                Path.Combine(ModelTestFiles.Fixtures, "tiny_bert", "vocab.txt"), "--out", model, "--pooling", "cls");
            Assert.True(imported.Code == 0, imported.Err);
            Assert.Contains("2 layers, hidden 32, 4 heads, FFN 64", imported.Out);

            // The fixture's first sequence is [CLS] "you love this film !" [SEP]: whole words, so joined they
            // are its text.
            var vocab = File.ReadAllLines(Path.Combine(model, "vocab.txt"));
            var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtures, "expected.json")))!;
            var sequence = expected["sequences"]![0]!;
            int[] ids = sequence["input_ids"]!.AsArray().Select(v => (int)v!).ToArray();
            string text = string.Join(' ', ids[1..^1].Select(id => vocab[id]));
            Assert.DoesNotContain(ids[1..^1], id => vocab[id].StartsWith("##", StringComparison.Ordinal));

            double[] hidden = sequence["last_hidden_state"]!.AsArray().Select(v => (double)v!).ToArray();
            int width = 32, rows = hidden.Length / width;
            double[] mean = Enumerable.Range(0, width)
                .Select(i => Enumerable.Range(0, rows).Sum(r => hidden[r * width + i]) / rows).ToArray();
            // The pooling stored at import (cls) is the default; --pooling mean overrides it.
            Check(CliRun.Run("embed", "--model", model, text, "--threads", "1", "--pooling", "mean"), mean);
            Check(CliRun.Run("embed", "--model", model, text, "--threads", "1"), hidden[..width]);

            void Check((int Code, string Out, string Err) run, double[] pooled)
            {
                Assert.True(run.Code == 0, run.Err);
                var json = JsonNode.Parse(run.Out)!;
                Assert.Equal(ids, json["input_ids"]!.AsArray().Select(v => (int)v!));
                double[] got = json["embedding"]!.AsArray().Select(v => (double)v!).ToArray();
                double norm = Math.Sqrt(pooled.Sum(v => v * v));
                double error = Math.Sqrt(got.Select((v, i) => Math.Pow(v - pooled[i] / norm, 2)).Sum());
                Assert.True(error <= 1e-5, $"embedding differs from torch's by {error:E2}");
            }
        }
        finally
        {
            if (Directory.Exists(model)) Directory.Delete(model, recursive: true);
        }
    }
}
