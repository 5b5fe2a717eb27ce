using System.Text.Json.Nodes;
using EdgeBert.Kernels;
using EdgeBert.Model;
using EdgeBert.Model.OnnxImport;

namespace EdgeBert.Tests;

/// <summary>tests/fixtures/onnx_tiny (tools/make_onnx_fixture.py): a tiny random BERT exported by torch.onnx with
/// HF-named weights and with generated-name [in, out] weights; the import must equal torch's float64 forward.
/// </summary>
public class OnnxImportTests
{
    static string Dir => Path.Combine(ModelTestFiles.Fixtures, "onnx_tiny");
    static readonly Lazy<JsonObject> Expected = new(() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!);

    static OnnxGraph Graph(string form) => OnnxGraph.Load(Path.Combine(Dir, form + ".onnx"));

    [Theory]
    [InlineData("named")]
    [InlineData("anonymous")]
    public void ImportMatchesTorchFloat64Forward(string form)
    {
        string output = Path.Combine(Path.GetTempPath(), $"edgebert-onnx-{form}-{Environment.ProcessId}");
        try
        {
            var import = OnnxBertImporter.Convert(Graph(form));
            Assert.Empty(import.Ignored);
            var checkpoint = ImportedCheckpoint.Write(import,
                File.ReadAllText(Path.Combine(ModelTestFiles.Fixtures, "tiny_bert", "vocab.txt")), output);
            var c = checkpoint.Config;
            var want = Expected.Value["config"]!;
            Assert.Equal((int)want["vocab_size"]!, c.VocabSize);
            Assert.Equal((int)want["hidden_size"]!, c.HiddenSize);
            Assert.Equal((int)want["num_hidden_layers"]!, c.NumHiddenLayers);
            Assert.Equal((int)want["num_attention_heads"]!, c.NumAttentionHeads);
            Assert.Equal((int)want["intermediate_size"]!, c.IntermediateSize);
            Assert.Equal((int)want["max_position_embeddings"]!, c.MaxPositionEmbeddings);
            Assert.Equal((int)want["type_vocab_size"]!, c.TypeVocabSize);
            Assert.Equal((double)want["layer_norm_eps"]!, c.LayerNormEps);
            Assert.Null(checkpoint.Weights.PoolerWeight);
            Assert.Null(checkpoint.Weights.ClassifierWeight);
            Assert.True(checkpoint.RequireTokenizer().Options.DoLowerCase);

            var engine = BertEngine.Load(checkpoint);
            foreach (var node in Expected.Value["sequences"]!.AsArray())
            {
                int[] ids = node!["input_ids"]!.AsArray().Select(v => (int)v!).ToArray();
                int[] types = node["token_type_ids"]!.AsArray().Select(v => (int)v!).ToArray();
                double[] hidden = node["last_hidden_state"]!.AsArray().Select(v => (double)v!).ToArray();
                var result = engine.Run([new SequenceInput(ids, types)], new RunOptions(ReturnHidden: true))[0];
                double error = ErrorNorm.Relative(result.Hidden, hidden);
                Assert.True(error <= 1e-5, $"{form}, n={ids.Length}: relative error {error:E2}");
            }
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void MatMulWithoutNamedBiasNamesTheNode()
    {
        var graph = Graph("anonymous");
        var add = graph.Nodes.Single(n => n.Inputs.Contains("encoder.layer.1.intermediate.dense.bias"));
        // The bias now comes from a Constant node with a generated name: the MatMul's layer is unknown.
        graph.Initializers["onnx::Add_999"] = graph.Initializers["encoder.layer.1.intermediate.dense.bias"];
        add.Inputs[add.Inputs.IndexOf("encoder.layer.1.intermediate.dense.bias")] = "onnx::Add_999";
        var e = Assert.Throws<InvalidDataException>(() => OnnxBertImporter.Convert(graph));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("MatMul node '/encoder/layer.1/intermediate/dense/MatMul'", e.Message);
    }

    [Fact]
    public void MissingInitializerNamesTheNode()
    {
        var graph = Graph("named");
        graph.Initializers.Remove("encoder.layer.0.output.dense.weight");
        var e = Assert.Throws<InvalidDataException>(() => OnnxBertImporter.Convert(graph));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("Transpose node '/encoder/layer.0/output/dense/Transpose'", e.Message);
        Assert.Contains("'encoder.layer.0.output.dense.weight'", e.Message);
    }

    [Fact]
    public void UnrecoverableHeadsAskForTheOption()
    {
        var graph = Graph("anonymous");
        // Shapes computed at run time (here: read from a graph input) show no head count.
        foreach (var reshape in graph.Nodes.Where(n => n.OpType == "Reshape")) reshape.Inputs[1] = "attention_mask";
        var e = Assert.Throws<InvalidDataException>(() => OnnxBertImporter.Convert(graph));
        Assert.Contains("--heads", e.Message);
        Assert.Equal(4, OnnxBertImporter.Convert(graph, heads: 4).Config.NumAttentionHeads);
    }

    [Fact]
    public void ExternalDataIsRefusedByName()
    {
        var graph = Graph("anonymous");
        var bias = graph.Initializers["encoder.layer.0.output.dense.bias"];
        graph.Initializers["encoder.layer.0.output.dense.bias"] = new OnnxTensor
        {
            Name = bias.Name, Dims = bias.Dims, DataType = bias.DataType, External = true,
        };
        var e = Assert.Throws<InvalidDataException>(() => OnnxBertImporter.Convert(graph));
        Assert.Contains("'encoder.layer.0.output.dense.bias'", e.Message);
        Assert.Contains("external data", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GemmIsALinearLayer(bool transB)
    {
        // The query's MatMul + Add rewritten as the one Gemm that exports of 2-D inputs (e.g. a pooler) write,
        // its weight under a generated name: [in, out], or [out, in] with transB = 1. The import must not change.
        var graph = Graph("anonymous");
        var want = OnnxBertImporter.Convert(Graph("anonymous")).Weights.Layers[0].QueryWeight;
        var matMul = graph.Nodes.Single(n => n.Name == "/encoder/layer.0/attention/self/query/MatMul");
        var add = graph.Nodes.Single(n => n.Name == "/encoder/layer.0/attention/self/query/Add");
        matMul.OpType = "Gemm";
        if (transB)
        {
            graph.Initializers["onnx::Gemm_1"] = new OnnxTensor
            {
                Name = "onnx::Gemm_1", Dims = [32, 32], DataType = OnnxTensor.Float, FloatData = want.Values,
            };
            matMul.Inputs[1] = "onnx::Gemm_1";
            matMul.Attributes["transB"] = new OnnxAttribute("transB", 0, 1, [], null);
        }
        matMul.Inputs.Add("encoder.layer.0.attention.self.query.bias");
        matMul.Outputs[0] = add.Outputs[0];
        graph.Nodes.Remove(add);
        Assert.Equal(want.Values, OnnxBertImporter.Convert(graph).Weights.Layers[0].QueryWeight.Values);
    }
}
