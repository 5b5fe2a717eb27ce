using System.Text.Json.Nodes;
using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>Where the fixtures (tests/fixtures) and the shared data (../shared/data) are, found
/// from the test binary.</summary>
static class ModelTestFiles
{
    public static readonly string RepoRoot = FindRoot();
    public static string Fixtures => Path.Combine(RepoRoot, "tests", "fixtures");
    public static string TinyBert => Path.Combine(Fixtures, "tiny_bert");
    public static string TinyBertF16 => Path.Combine(Fixtures, "tiny_bert_f16");
    public static string SharedData => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));
    public static string BertBaseVocab => Path.Combine(SharedData, "bert-base-uncased", "vocab.txt");

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "EdgeBert.sln"))) return d.FullName;
        throw new InvalidOperationException("EdgeBert.sln not found above the test binary");
    }

    public static JsonObject Expected() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "tiny_bert_expected.json")))!;

    /// <summary>A fresh temporary directory, deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("edgebert-test-").FullName;
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }

    /// <summary>Copies config.json and vocab.txt of the tiny fixture into <paramref name="dir"/> and writes
    /// <paramref name="tensors"/> as its model.safetensors.</summary>
    public static void WriteModelDir(string dir, IEnumerable<(string, int[], float[])> tensors, string? config = null)
    {
        System.IO.File.WriteAllText(System.IO.Path.Combine(dir, "config.json"),
            config ?? System.IO.File.ReadAllText(System.IO.Path.Combine(TinyBert, "config.json")));
        System.IO.File.Copy(System.IO.Path.Combine(TinyBert, "vocab.txt"), System.IO.Path.Combine(dir, "vocab.txt"),
            true);
        SafeTensors.Write(System.IO.Path.Combine(dir, "model.safetensors"), tensors);
    }

    /// <summary>The tiny fixture's tensors as stored (bert. prefix, no position_ids).</summary>
    public static List<(string Name, int[] Shape, float[] Data)> TinyTensors()
    {
        using var f = SafeTensorsFile.Open(System.IO.Path.Combine(TinyBert, "model.safetensors"));
        return f.Tensors.Values.Where(t => t.DType == "F32").Select(t => (t.Name, t.Shape, f.ReadFloats(t.Name)))
            .ToList();
    }
}
