using System.Text.Json.Nodes;
using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>`edgebert quantize` and INT8 precision in the engine: the stored int8 values against a plain
/// reference quantizer, exact round trips, and one-line errors for broken quantized files.</summary>
public sealed class Int8CheckpointTests : IDisposable
{
    readonly ModelTestFiles.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static readonly SequenceInput[] Inputs =
    [
        new([2, 17, 33, 9, 60, 3]), new([2, 5, 3], [0, 0, 1]),
        new([.. Enumerable.Range(0, 40).Select(i => (i * 7) % 100 + 2)]),
    ];

    string Quantized(string model = "tiny_bert_gated")
    {
        string output = _dir.File("int8");
        var (code, stdout, stderr) =
            CliRun.Run("quantize", "--model", Path.Combine(ModelTestFiles.Fixtures, model), "--out", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("smaller than F32", stdout);
        return output;
    }

    [Fact]
    public void QuantizeStoresEachLinearWeightAndTheWordEmbeddingsAsSymmetricInt8PerRow()
    {
        var original = BertCheckpoint.Load(EngineFixtures.TinyBertGated);
        string dir = Quantized();
        using var file = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors"));
        int int8Tensors = 0;
        foreach (var (name, param) in original.Weights.Named())
        {
            var info = file.Tensors[name];
            bool int8 = name == "bert.embeddings.word_embeddings.weight"
                || (name.Contains(".encoder.layer.") && name.EndsWith(".weight") && !name.Contains("LayerNorm"));
            Assert.Equal(int8 ? "I8" : "F32", info.DType);
            if (!int8) { Assert.Equal(param.Values, file.ReadFloats(name)); continue; }
            int8Tensors++;
            int rows = param.Shape[0], cols = param.Shape[1];
            var q = new sbyte[rows * cols];
            file.ReadInt8(name, q);
            var scales = file.ReadFloats(name + "_scale");
            for (int r = 0; r < rows; r++)
            {
                // Reference: scale = max |w| / 127, q = w / scale rounded half to even.
                float max = 0;
                for (int c = 0; c < cols; c++) max = Math.Max(max, Math.Abs(param.Values[r * cols + c]));
                float scale = max / 127f;
                Assert.Equal(scale, scales[r]);
                for (int c = 0; c < cols; c++)
                {
                    var expected = (sbyte)Math.Round(param.Values[r * cols + c] / scale, MidpointRounding.ToEven);
                    Assert.Equal(expected, q[r * cols + c]);
                }
            }
        }
        Assert.Equal(1 + 6 * original.Config.NumHiddenLayers, int8Tensors);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        Assert.Equal("int8", config["precision"]!.GetValue<string>());
    }

    [Fact]
    public void AQuantizedCheckpointRunsInInt8AndAnswersExactlyAsQuantizingOnLoad()
    {
        var fp32 = BertCheckpoint.Load(EngineFixtures.TinyBertGated);
        var onLoad = BertEngine.Load(fp32, new EngineOptions { Precision = Precision.Int8 });
        var stored = BertEngine.Load(BertCheckpoint.Load(Quantized()));
        Assert.Equal(Precision.Int8, stored.Precision);
        var a = onLoad.Run(Inputs);
        var b = stored.Run(Inputs);
        for (int s = 0; s < Inputs.Length; s++)
        {
            Assert.Equal(a[s].Logits, b[s].Logits);
            Assert.Equal(a[s].Kept, b[s].Kept);
        }
        // Saved again (F32 or int8), the int8 values stay those of the first quantization.
        var again = BertCheckpoint.Load(Quantized());
        again.Save(_dir.File("again"), TensorStorage.Int8);
        Assert.Equal(b[0].Logits, BertEngine.Load(BertCheckpoint.Load(_dir.File("again"))).Run(Inputs)[0].Logits);
    }

    [Fact]
    public void Int8LogitsStayCloseToFp32()
    {
        var checkpoint = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        var fp32 = BertEngine.Load(checkpoint).Run(Inputs);
        var int8 = BertEngine.Load(checkpoint, new EngineOptions { Precision = Precision.Int8 }).Run(Inputs);
        for (int s = 0; s < Inputs.Length; s++)
        {
            double error = Kernels.ErrorNorm.Relative(int8[s].Logits, fp32[s].Logits);
            Assert.True(error is > 0 and < 0.05, $"sequence {s}: relative error {error}");
        }
    }

    [Fact]
    public void EveryInt8PathGivesTheSameBitsAndTheGatesStillCompact()
    {
        var checkpoint = BertCheckpoint.Load(EngineFixtures.TinyBertGated);
        SequenceResult[]? first = null;
        foreach (var path in Kernels.Int8Paths.Supported)
        {
            var engine = BertEngine.Load(checkpoint, new EngineOptions { Precision = Precision.Int8, Int8Path = path });
            Assert.Equal(path, engine.Int8Path);
            var results = engine.Run(Inputs);
            Assert.True(results[2].Kept[^1] < Inputs[2].InputIds.Length, "the 40-token input loses tokens");
            Assert.True(results[2].Flops < results[2].DenseFlops);
            first ??= results;
            for (int s = 0; s < Inputs.Length; s++)
            {
                Assert.Equal(first[s].Logits, results[s].Logits);
                Assert.Equal(first[s].Kept, results[s].Kept);
            }
        }
    }

    [Theory]
    [InlineData("missing scale")]
    [InlineData("scale dtype")]
    [InlineData("scale shape")]
    [InlineData("scale zero")]
    [InlineData("int8 layer norm")]
    [InlineData("stray scale")]
    [InlineData("minus 128")]
    public void BrokenQuantizedFilesGiveOneLineErrorsNamingTheTensor(string defect)
    {
        const string weight = "bert.encoder.layer.1.intermediate.dense.weight";
        var tensors = new List<StoredTensor>();
        var source = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        foreach (var (name, p) in source.Weights.Named())
        {
            if (name != weight) { tensors.Add(StoredTensor.F32(name, p.Shape, p.Values)); continue; }
            var q = Enumerable.Range(0, p.Values.Length).Select(i => (sbyte)(i % 255 - 127)).ToArray();
            if (defect == "minus 128") q[3] = sbyte.MinValue;
            tensors.Add(StoredTensor.I8(name, p.Shape, q));
            var scales = Enumerable.Repeat(0.01f, p.Shape[0]).ToArray();
            if (defect == "scale zero") scales[1] = 0;
            if (defect == "scale dtype") tensors.Add(StoredTensor.F16(name + "_scale", [p.Shape[0]], scales));
            else if (defect == "scale shape")
                tensors.Add(StoredTensor.F32(name + "_scale", [p.Shape[0] - 1], scales[1..]));
            else if (defect != "missing scale") tensors.Add(StoredTensor.F32(name + "_scale", [p.Shape[0]], scales));
        }
        string expected = weight + "_scale";
        if (defect == "int8 layer norm")
        {
            const string norm = "bert.encoder.layer.0.output.LayerNorm.weight";
            int i = tensors.FindIndex(t => t.Name == norm);
            tensors[i] = StoredTensor.I8(norm, [32], new sbyte[32]);
            tensors.Add(StoredTensor.F32(norm + "_scale", [1], [1f]));
            expected = norm;
        }
        if (defect == "stray scale")
        {
            tensors.Add(StoredTensor.F32("bert.pooler.dense.weight_scale", [32], new float[32]));
            expected = "bert.pooler.dense.weight_scale";
        }
        if (defect == "minus 128") expected = weight;
        string dir = _dir.File("broken");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(ModelTestFiles.TinyBert, "config.json"), Path.Combine(dir, "config.json"));
        SafeTensors.Write(Path.Combine(dir, "model.safetensors"), tensors);
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(dir));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
