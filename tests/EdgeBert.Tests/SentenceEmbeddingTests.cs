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

    [Fact]
    public void JsonlBatchesEqualOneTextAtATime()
    {
        string fixtures = Path.Combine(ModelTestFiles.Fixtures, "onnx_tiny");
        string dir = Path.Combine(Path.GetTempPath(), $"edgebert-embed-jsonl-{Environment.ProcessId}");
        string model = Path.Combine(dir, "model"), input = Path.Combine(dir, "in.jsonl");
        try
        {
            var imported = CliRun.Run("import", "--onnx", Path.Combine(fixtures, "named.onnx"), "--vocab",
                Path.Combine(ModelTestFiles.Fixtures, "tiny_bert", "vocab.txt"), "--out", model);
            Assert.True(imported.Code == 0, imported.Err);
            // Lengths differ, so the packed batch mixes sequences of several lengths.
            string[] texts = ["you love this film !", "this film", "", "you love this love this film film !"];
            var lines = texts.Select(t => new JsonObject { ["text"] = t }.ToJsonString()).ToList();
            lines.Add("""{"input_ids": [2, 5, 6, 3]}""");
            lines.Add("""{"text": "this film", "text_pair": "you love"}""");
            File.WriteAllLines(input, lines);

            string output = Path.Combine(dir, "batched.jsonl"), single = Path.Combine(dir, "single.jsonl");
            var batched = CliRun.Run("embed", "--model", model, "--input", input, "--output", output,
                "--batch-size", "4", "--threads", "2");
            Assert.True(batched.Code == 0, batched.Err);
            var one = CliRun.Run("embed", "--model", model, "--input", input, "--output", single,
                "--batch-size", "1", "--threads", "1");
            Assert.True(one.Code == 0, one.Err);
            var got = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToArray();
            var want = File.ReadAllLines(single).Select(l => JsonNode.Parse(l)!).ToArray();
            Assert.Equal(lines.Count, got.Length);
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < got.Length; i++)
            {
                Assert.Equal(Ints(want[i]["input_ids"]!), Ints(got[i]["input_ids"]!));
                double[] a = Doubles(got[i]["embedding"]!), b = Doubles(want[i]["embedding"]!);
                Assert.Equal(32, a.Length);
                double error = Math.Sqrt(a.Select((v, j) => (v - b[j]) * (v - b[j])).Sum());
                Assert.True(error <= 1e-6, $"line {i + 1}: batched differs from one at a time by {error:E2}");
            }
            Assert.Equal([2, 5, 6, 3], Ints(got[4]["input_ids"]!));
            // The single-text verb gives the same line as the file's.
            var text = CliRun.Run("embed", "--model", model, texts[0], "--threads", "1");
            Assert.Equal(Doubles(want[0]["embedding"]!), Doubles(JsonNode.Parse(text.Out)!["embedding"]!));

            File.WriteAllLines(input, [lines[0], """{"text": 3}"""]);
            File.Delete(output);
            var bad = CliRun.Run("embed", "--model", model, "--input", input, "--output", output);
            Assert.NotEqual(0, bad.Code);
            Assert.Contains("line 2", bad.Err);
            Assert.False(File.Exists(output));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }

        static int[] Ints(JsonNode n) => n.AsArray().Select(v => (int)v!).ToArray();
        static double[] Doubles(JsonNode n) => n.AsArray().Select(v => (double)v!).ToArray();
    }

    [Fact]
    public void BenchEmbedTimesOneTextACall()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"edgebert-bench-embed-{Environment.ProcessId}");
        string model = Path.Combine(dir, "model"), input = Path.Combine(dir, "in.jsonl");
        try
        {
            var imported = CliRun.Run("import", "--onnx",
                Path.Combine(ModelTestFiles.Fixtures, "onnx_tiny", "named.onnx"), "--vocab",
                Path.Combine(ModelTestFiles.Fixtures, "tiny_bert", "vocab.txt"), "--out", model);
            Assert.True(imported.Code == 0, imported.Err);
            File.WriteAllLines(input, ["""{"text": "you love this film !"}""", """{"text": ""}""",
                """{"input_ids": [2, 5, 6, 3]}"""]);
            var run = CliRun.Run("bench", "embed", "--model", model, "--input", input, "--threads", "2",
                "--seconds", "0.05", "--json");
            Assert.True(run.Code == 0, run.Err);
            var json = JsonNode.Parse(run.Out)!;
            Assert.Equal(3, (int)json["texts"]!);
            Assert.Equal(2, (int)json["threads"]!);
            Assert.True((double)json["texts_per_s"]! > 0);
            Assert.True((int)json["passes"]! >= 1);

            var text = CliRun.Run("bench", "embed", "--model", model, "--input", input, "--seconds", "0");
            Assert.True(text.Code == 0, text.Err);
            Assert.Contains("texts/s", text.Out);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
