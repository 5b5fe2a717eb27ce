using System.Text.Json.Nodes;
using EdgeBert.Model;

namespace EdgeBert.Tests;

public class BertConfigTests
{
    [Fact]
    public void FixtureConfigFieldsAndLabels()
    {
        var c = BertConfig.Load(Path.Combine(ModelTestFiles.TinyBert, "config.json"));
        Assert.Equal((106, 32, 2, 4, 64, 64, 2),
            (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize,
            c.MaxPositionEmbeddings, c.TypeVocabSize));
        Assert.Equal(1e-12, c.LayerNormEps);
        Assert.Equal("gelu", c.HiddenAct);
        Assert.Equal(8, c.HeadDim);
        Assert.Equal(3, c.NumLabels);
        Assert.False(c.IsRegression);
        Assert.Equal(128, c.GatePositions);
        Assert.Equal("single_label_classification", c.ProblemType);
    }

    [Fact]
    public void UnknownKeysAndChangesSurviveSave()
    {
        using var tmp = new ModelTestFiles.TempDir();
        var c =
            BertConfig.Parse("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"my_key\": {\"a\": [1, \"x\"]}, "
            + "\"id2label\": {\"1\": \"yes\", \"0\": \"no\"}}", "in.json");
        Assert.Equal(["no", "yes"], c.Labels);
        c.GatePositions = 32;
        c.Labels = ["score"];
        c.Save(tmp.File("config.json"));
        var back = BertConfig.Load(tmp.File("config.json"));
        Assert.Equal(32, back.GatePositions);
        Assert.True(back.IsRegression);
        Assert.Equal("{\"a\":[1,\"x\"]}", back.Extra["my_key"]!.ToJsonString());
        var raw = JsonNode.Parse(File.ReadAllText(tmp.File("config.json")))!;
        Assert.Equal("score", raw["id2label"]!["0"]!.GetValue<string>());
        Assert.Equal(0, raw["label2id"]!["score"]!.GetValue<int>());
        Assert.Equal(64, raw["hidden_size"]!.GetValue<int>());
    }

    [Fact]
    public void DefaultsFollowHuggingFace()
    {
        var c = BertConfig.Parse("{}", "x");
        Assert.Equal((30522, 768, 12, 12, 3072, 512, 2),
            (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize,
            c.MaxPositionEmbeddings, c.TypeVocabSize));
        Assert.Equal(["LABEL_0", "LABEL_1"], c.Labels);
        Assert.Equal(5, BertConfig.Parse("{\"num_labels\": 5}", "x").NumLabels);
        Assert.True(BertConfig.Parse("{\"problem_type\": \"regression\", \"id2label\": {\"0\": \"a\", \"1\": \"b\"}}",
            "x").IsRegression);
    }

    [Theory]
    [InlineData("{\"hidden_size\": 30", "invalid JSON", null)]
    [InlineData("[]", "not a JSON object", null)]
    [InlineData("{\"hidden_size\": 30}", "'hidden_size'", "multiple")]
    [InlineData("{\"num_hidden_layers\": -1}", "'num_hidden_layers'", "non-negative integer")]
    [InlineData("{\"vocab_size\": 0}", "'vocab_size'", "positive")]
    [InlineData("{\"vocab_size\": \"big\"}", "'vocab_size'", null)]
    [InlineData("{\"layer_norm_eps\": -1}", "'layer_norm_eps'", null)]
    [InlineData("{\"id2label\": {\"0\": \"a\", \"5\": \"b\"}}", "'id2label'", "'5'")]
    [InlineData("{\"id2label\": [\"a\"]}", "'id2label'", null)]
    [InlineData("{\"problem_type\": \"ranking\"}", "'problem_type'", "ranking")]
    public void InvalidConfigsNameFileAndKey(string json, string key, string? detail)
    {
        var e = Assert.Throws<InvalidDataException>(() => BertConfig.Parse(json, "/models/m/config.json"));
        Assert.StartsWith("/models/m/config.json: ", e.Message);
        Assert.Contains(key, e.Message);
        if (detail is not null) Assert.Contains(detail, e.Message);
    }
}
