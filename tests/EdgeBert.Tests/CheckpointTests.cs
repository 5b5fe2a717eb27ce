using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeBert.Cli;
using EdgeBert.Model;

namespace EdgeBert.Tests;

public class CheckpointTests
{
    [Fact]
    public void TinyFixtureLoadsWithTheValuesPyTorchStored()
    {
        var ckpt = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        var tensors = ModelTestFiles.Expected()["tensors"]!.AsObject();
        var named = ckpt.Weights.Named().ToDictionary(t => t.Name, t => t.Param);
        Assert.Equal(tensors.Count, named.Count);
        foreach (var (name, check) in tensors)
        {
            var p = named[name];
            Assert.Equal(check!["shape"]!.AsArray().Select(x => (int)x!), p.Shape);
            var first = check["first"]!.AsArray().Select(x => (float)(double)x!).ToArray();
            Assert.Equal(first, p.Values.Take(first.Length).ToArray());
            Assert.Equal((float)(double)check["last"]!, p.Values[^1]);
            double sum = p.Values.Sum(v => (double)v);
            Assert.Equal((double)check["sum"]!, sum, 1e-9 * Math.Max(1, Math.Abs(sum)));
        }
        Assert.Equal(["negative", "neutral", "positive"], ckpt.Config.Labels);
        Assert.NotNull(ckpt.Tokenizer);
        Assert.Equal(64, ckpt.MaxSequenceLength);
        Assert.Contains("bert.embeddings.position_ids", ckpt.IgnoredTensors);
        Assert.False(ckpt.Weights.HasGates);
    }

    [Fact]
    public void F16FixtureWithUnalignedDataLoadsWithinHalfRounding()
    {
        var f32 = BertCheckpoint.Load(ModelTestFiles.TinyBert).Weights.Named()
            .ToDictionary(t => t.Name, t => t.Param.Values);
        var f16 = BertCheckpoint.Load(ModelTestFiles.TinyBertF16);
        var tensors = ModelTestFiles.Expected()["tensors"]!.AsObject();
        foreach (var (name, p) in f16.Weights.Named())
        {
            var first = tensors[name]!["first_f16"]!.AsArray().Select(x => (float)(double)x!).ToArray();
            Assert.Equal(first, p.Values.Take(first.Length).ToArray());
            var reference = f32[name];
            for (int i = 0; i < reference.Length; i++)
                Assert.True(Math.Abs(p.Values[i] - reference[i]) <= Math.Abs(reference[i]) / 2048 + 6e-8,
                            $"{name}[{i}]: {p.Values[i]} vs {reference[i]}");
        }
    }

    [Fact]
    public void SavedCheckpointReloadsIdenticallyAndKeepsUnknownConfigKeys()
    {
        using var tmp = new ModelTestFiles.TempDir();
        var original = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        original.Save(tmp.Path);
        var reloaded = BertCheckpoint.Load(tmp.Path);
        foreach (var ((name, a), (name2, b)) in original.Weights.Named().Zip(reloaded.Weights.Named()))
        {
            Assert.Equal(name, name2);
            Assert.Equal(a.Values, b.Values);
        }
        var config = JsonNode.Parse(File.ReadAllText(tmp.File("config.json")))!.AsObject();
        Assert.Equal("[1,2,3]", config["custom_unknown_key"]!["kept"]!.ToJsonString());
        Assert.Equal("positive", config["id2label"]!["2"]!.GetValue<string>());
        Assert.Equal(2, config["label2id"]!["positive"]!.GetValue<int>());
        Assert.True(File.Exists(tmp.File("vocab.txt")));
        using var file = SafeTensorsFile.Open(tmp.File("model.safetensors"));
        Assert.All(file.Tensors.Keys, n => Assert.True(n.StartsWith("bert.") || n.StartsWith("classifier."), n));
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp"));
    }

    [Fact]
    public void BareModelNamesLegacyLayerNormNamesGatesAndMlmHeadAreAccepted()
    {
        using var tmp = new ModelTestFiles.TempDir();
        var tensors = ModelTestFiles.TinyTensors()
            .Where(t => !t.Name.StartsWith("classifier."))
            .Select(t => (Name: t.Name[5..].Replace("LayerNorm.weight", "LayerNorm.gamma")
                .Replace("LayerNorm.bias", "LayerNorm.beta"), t.Shape, t.Data))
            .ToList();
        var gate = Enumerable.Range(0, 128).Select(i => i / 128f).ToArray();
        tensors.Add(("encoder.layer.0.gate", [128], gate));
        tensors.Add(("encoder.layer.1.gate", [128], gate));
        tensors.Add(("cls.predictions.transform.dense.weight", [32, 32], new float[32 * 32]));
        tensors.Add(("cls.predictions.transform.dense.bias", [32], new float[32]));
        tensors.Add(("cls.predictions.transform.LayerNorm.gamma", [32], new float[32]));
        tensors.Add(("cls.predictions.transform.LayerNorm.beta", [32], new float[32]));
        tensors.Add(("cls.predictions.bias", [106], Enumerable.Range(0, 106).Select(i => (float)i).ToArray()));
        ModelTestFiles.WriteModelDir(tmp.Path, tensors);

        var ckpt = BertCheckpoint.Load(tmp.Path);
        var reference = ModelTestFiles.TinyTensors().ToDictionary(t => t.Name, t => t.Data);
        foreach (var (name, p) in ckpt.Weights.Named().Where(t => reference.ContainsKey(t.Name)))
            Assert.Equal(reference[name], p.Values);
        Assert.Null(ckpt.Weights.ClassifierWeight);
        Assert.NotNull(ckpt.Weights.PoolerWeight);
        Assert.True(ckpt.Weights.HasGates);
        Assert.Equal(gate, ckpt.Weights.Layers[1].Gate!.Values);
        Assert.Equal(105f, ckpt.Weights.MlmHead!.DecoderBias.Values[105]);
    }

    static (string Dir, ModelTestFiles.TempDir Tmp) DirWith(Func<List<(string Name, int[] Shape, float[] Data)>,
        List<(string, int[], float[])>> edit, string? config = null)
    {
        var tmp = new ModelTestFiles.TempDir();
        ModelTestFiles.WriteModelDir(tmp.Path, edit(ModelTestFiles.TinyTensors()), config);
        return (tmp.Path, tmp);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var (dir, tmp) = DirWith(t => t.Where(x => x.Name != "bert.encoder.layer.1.output.dense.weight")
            .Select(x => (x.Name, x.Shape, x.Data)).ToList());
        using var _ = tmp;
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir));
        Assert.Contains("bert.encoder.layer.1.output.dense.weight", e.Message);
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void ShapeDisagreeingWithConfigNamesTensorAndBothShapes()
    {
        string config = File.ReadAllText(Path.Combine(ModelTestFiles.TinyBert, "config.json"))
            .Replace("\"intermediate_size\": 64", "\"intermediate_size\": 48");
        var (dir, tmp) = DirWith(t => t.Select(x => (x.Name, x.Shape, x.Data)).ToList(), config);
        using var _ = tmp;
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir));
        Assert.Contains("bert.encoder.layer.0.intermediate.dense.weight", e.Message);
        Assert.Contains("[64, 32]", e.Message);
        Assert.Contains("[48, 32]", e.Message);
    }

    [Fact]
    public void ClassifierShapeDisagreeingWithId2LabelIsExplained()
    {
        string config = File.ReadAllText(Path.Combine(ModelTestFiles.TinyBert, "config.json"))
            .Replace("\"2\": \"positive\"", "\"2\": \"positive\", \"3\": \"other\"");
        var (dir, tmp) = DirWith(t => t.Select(x => (x.Name, x.Shape, x.Data)).ToList(), config);
        using var _ = tmp;
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir));
        Assert.Contains("classifier.weight", e.Message);
        Assert.Contains("num_labels = 4", e.Message);
    }

    [Fact]
    public void LayerBeyondConfigAndPartialGatesAreRejected()
    {
        var (dir, tmp) = DirWith(t => t.Select(x => (x.Name, x.Shape, x.Data))
            .Append(("bert.encoder.layer.2.output.dense.bias", [32], new float[32])).ToList());
        using (tmp)
            Assert.Contains("layer 2", Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir)).Message);

        var (dir2, tmp2) = DirWith(t => t.Select(x => (x.Name, x.Shape, x.Data))
            .Append(("bert.encoder.layer.0.gate", [128], new float[128])).ToList());
        using (tmp2)
            Assert.Contains("bert.encoder.layer.1.gate",
                Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir2)).Message);

        // gate_positions given: gates of another length are rejected.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(ModelTestFiles.TinyBert, "config.json")))!.AsObject();
        config["gate_positions"] = 128;
        var (dir3, tmp3) = DirWith(WithGates(64), config.ToJsonString());
        using (tmp3)
            Assert.Contains("[128]", Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir3)).Message);
    }

    static Func<List<(string Name, int[] Shape, float[] Data)>, List<(string, int[], float[])>> WithGates(int n) =>
        t => t.Select(x => (x.Name, x.Shape, x.Data))
            .Append(("bert.encoder.layer.0.gate", [n], new float[n]))
                .Append(("bert.encoder.layer.1.gate", [n], new float[n]))
            .ToList();

    [Fact]
    public void GatePositionsComeFromTheGatesWhenConfigHasNone()
    {
        var (dir, tmp) = DirWith(WithGates(64));
        using var _ = tmp;
        Assert.DoesNotContain("gate_positions", File.ReadAllText(Path.Combine(dir, "config.json")));
        var checkpoint = BertCheckpoint.Load(dir);
        Assert.Equal(64, checkpoint.Config.GatePositions);
        Assert.All(checkpoint.Weights.Layers, l => Assert.Equal(64, l.Gate!.Values.Length));
    }

    [Fact]
    public void MissingDirectoryAndFilesAreNamed()
    {
        using var tmp = new ModelTestFiles.TempDir();
        string missing = tmp.File("nope");
        Assert.Contains(missing, Assert.Throws<DirectoryNotFoundException>(() => BertCheckpoint.Load(missing)).Message);
        Assert.Contains("config.json", Assert.Throws<FileNotFoundException>(() => BertCheckpoint.Load(tmp.Path))
            .Message);
        File.Copy(Path.Combine(ModelTestFiles.TinyBert, "config.json"), tmp.File("config.json"));
        Assert.Contains("model.safetensors",
            Assert.Throws<FileNotFoundException>(() => BertCheckpoint.Load(tmp.Path)).Message);
        File.WriteAllText(tmp.File("config.json"), "{\"hidden_size\": 32,");
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(tmp.Path));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("invalid JSON", e.Message);
    }

    [Fact]
    public void TokenizeVerbPrintsTheReferenceEncoding()
    {
        var expected = ModelTestFiles.Expected()["cases"]!.AsArray().First(c => c!["pair"] is not null)!;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["tokenize", "--model", ModelTestFiles.TinyBert, "--pair", (string)expected["pair"]!,
            (string)expected["text"]!], stdout, stderr);
        Assert.Equal(0, code);
        var got = JsonNode.Parse(stdout.ToString())!;
        Assert.Equal(expected["tokens"]!.ToJsonString(), got["tokens"]!.ToJsonString());
        Assert.Equal(expected["input_ids"]!.ToJsonString(), got["input_ids"]!.ToJsonString());
        Assert.Equal(expected["token_type_ids"]!.ToJsonString(), got["token_type_ids"]!.ToJsonString());
    }

    [Fact]
    public void TokenizeVerbReportsBadInputInOneLine()
    {
        var stderr = new StringWriter();
        Assert.Equal(1, CliApp.Run(["tokenize", "--model", "/nonexistent/model", "hi"], new StringWriter(), stderr));
        Assert.StartsWith("error: /nonexistent/model", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));
        Assert.Equal(2, CliApp.Run(["tokenize", "--model", ModelTestFiles.TinyBert], new StringWriter(),
            new StringWriter()));
    }
}
