using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeBert.Cli;
using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>`edgebert infer` and `edgebert classify`, run in-process. Their numbers must be the engine's
/// (bit for bit: both run the default ISA path) and the engine's are checked against PyTorch.</summary>
public sealed class InferCliTests : IDisposable
{
    readonly ModelTestFiles.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string Input(params string[] lines)
    {
        string path = _dir.File("in.jsonl");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    string Output => _dir.File("out.jsonl");

    static string TextLine(FixtureCase c)
    {
        var o = new JsonObject { ["text"] = c.Text };
        if (c.Pair is not null) o["text_pair"] = c.Pair;
        return o.ToJsonString();
    }

    static string IdsLine(FixtureCase c, bool withTypes = true)
    {
        var o = new JsonObject { ["input_ids"] = new JsonArray(c.Ids.Select(i => (JsonNode)i).ToArray()) };
        if (withTypes) o["token_type_ids"] = new JsonArray(c.Types.Select(i => (JsonNode)i).ToArray());
        return o.ToJsonString();
    }

    static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => v.GetSingle()).ToArray();
    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var exp = logits.Select(z => Math.Exp(z - max)).ToArray();
        double sum = exp.Sum();
        return exp.Select(v => v / sum).ToArray();
    }

    static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    [Fact]
    public void InferWritesOneLinePerInputInOrderWithTheEnginesNumbers()
    {
        var cases = EngineFixtures.DenseCases();
        // Texts (with and without a pair), id lines with token types, and one without (types default to 0).
        var lines = cases.Select(c => c.Text is not null ? TextLine(c) : IdsLine(c)).ToList();
        var noTypes = cases.First(c => c.Text is null && c.Types.All(t => t == 0) && c.Length > 1);
        lines.Add(IdsLine(noTypes, withTypes: false));
        var expectedCases = cases.Append(noTypes).ToList();

        var (code, stdout, stderr) = CliRun.Run("infer", "--model", ModelTestFiles.TinyBert, "--input",
            Input([.. lines]),
                                         "--output", Output, "--threads", "2", "--batch-size", "3");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Equal("", stdout);
        Assert.False(File.Exists(Output + ".partial"));

        var engine = EngineFixtures.TinyF32.Value;
        var labels = engine.Config.Labels;
        var outputLines = File.ReadAllLines(Output);
        Assert.Equal(expectedCases.Count, outputLines.Length);
        for (int i = 0; i < outputLines.Length; i++)
        {
            var c = expectedCases[i];
            using var doc = JsonDocument.Parse(outputLines[i]);
            var root = doc.RootElement;
            Assert.Equal(["input_ids", "logits", "label", "kept", "flops", "dense_flops"],
                root.EnumerateObject().Select(p => p.Name));
            Assert.Equal(c.Ids, Ints(root.GetProperty("input_ids")));

            var alone = engine.Run([c.Input])[0];
            var logits = Floats(root.GetProperty("logits"));
            Assert.Equal(alone.Logits, logits);
            Assert.True(EngineFixtures.RelativeError(logits, c.Dense.Logits) <= 1e-4,
                $"line {i + 1}: logits far from PyTorch");
            Assert.Equal(labels[ArgMax(logits)], root.GetProperty("label").GetString());
            Assert.Equal(Enumerable.Repeat(c.Length, engine.Config.NumHiddenLayers), Ints(root.GetProperty("kept")));
            Assert.Equal(alone.Flops, root.GetProperty("flops").GetInt64());
            Assert.Equal(alone.DenseFlops, root.GetProperty("dense_flops").GetInt64());
        }
    }

    [Fact]
    public void InferRunsAGatedCheckpointGatedUnlessNoGates()
    {
        var cases = EngineFixtures.GatedCases();
        string input = Input([.. cases.Select(c => IdsLine(c))]);
        foreach (bool noGates in new[] { false, true })
        {
            string[] args = ["infer", "--model", EngineFixtures.TinyBertGated, "--input", input, "--output", Output,
                "--threads", "1"];
            var (code, _, stderr) = CliRun.Run(noGates ? [.. args, "--no-gates"] : args);
            Assert.Equal(0, code);
            Assert.Equal("", stderr);
            var outputLines = File.ReadAllLines(Output);
            Assert.Equal(cases.Count, outputLines.Length);
            for (int i = 0; i < cases.Count; i++)
            {
                var root = JsonDocument.Parse(outputLines[i]).RootElement;
                var expected = noGates ? cases[i].Dense : cases[i].Gated!;
                Assert.Equal(expected.Kept ?? Enumerable.Repeat(cases[i].Length, 4).ToArray(),
                    Ints(root.GetProperty("kept")));
                Assert.Equal(expected.MultiplyAdds, root.GetProperty("flops").GetInt64());
                Assert.Equal(cases[i].Dense.MultiplyAdds, root.GetProperty("dense_flops").GetInt64());
                Assert.True(EngineFixtures.RelativeError(Floats(root.GetProperty("logits")), expected.Logits) <= 1e-4);
            }
        }
    }

    /// <summary>Exit 1, exactly one "error: ..." line naming the file (and line), no output left behind.</summary>
    void AssertFails(string[] args, params string[] mentions)
    {
        var (code, stdout, stderr) = CliRun.Run(args);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var errorLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(errorLines);
        Assert.StartsWith("error: ", errorLines[0]);
        Assert.DoesNotContain("   at ", stderr);
        foreach (var m in mentions) Assert.Contains(m, errorLines[0]);
        Assert.False(File.Exists(Output), "an output file was left");
        Assert.False(File.Exists(Output + ".partial"), "a .partial file was left");
    }

    string[] InferArgs(string input, string? model = null) =>
        ["infer", "--model", model ?? ModelTestFiles.TinyBert, "--input", input, "--output", Output, "--threads", "1"];

    public static TheoryData<string, string, string> BadLines => new()
    {
        // second line (the first is fine), what the message must say
        { "input id outside the vocabulary", "{\"input_ids\": [2, 106, 3]}", "outside the vocabulary" },
        { "negative input id", "{\"input_ids\": [2, -1, 3]}", "outside the vocabulary" },
        {
            "longer than max_position_embeddings",
            "{\"input_ids\": [" + string.Join(",", Enumerable.Repeat(7, 65)) + "]}",
            "max_position_embeddings"
        },
        { "token type outside the type vocabulary", "{\"input_ids\": [2, 7, 3], \"token_type_ids\": [0, 2, 0]}",
            "token type" },
        { "token types of another length", "{\"input_ids\": [2, 7, 3], \"token_type_ids\": [0, 0]}", "token_type_ids" },
        { "empty input_ids", "{\"input_ids\": []}", "empty" },
        { "ids that are not integers", "{\"input_ids\": [2, 7.5, 3]}", "integer" },
        { "invalid JSON", "{\"text\": \"the cat\"", "line 2" },
        { "JSON that is not an object", "[2, 7, 3]", "object" },
        { "an object with neither text nor input_ids", "{\"txt\": \"the cat\"}", "text" },
        { "empty text", "{\"text\": \"\"}", "empty" },
        { "blank text", "{\"text\": \"  \\t \"}", "empty" },
        { "empty text_pair", "{\"text\": \"the cat\", \"text_pair\": \"\"}", "empty" },
        { "empty line", "", "empty line" },
    };

    [Theory]
    [MemberData(nameof(BadLines))]
    public void InferRejectsABadLineNamingFileAndLine(string what, string badLine, string mention)
    {
        Assert.NotNull(what);
        string input = Input("{\"text\": \"the cat sat\"}", badLine, "{\"input_ids\": [2, 7, 3]}");
        AssertFails(InferArgs(input), input, "line 2", mention);
    }

    [Fact]
    public void InferRejectsMissingFilesAndEmptyInput()
    {
        string missingInput = _dir.File("nothing.jsonl");
        AssertFails(InferArgs(missingInput), missingInput);

        string missingModel = _dir.File("no-model");
        AssertFails(InferArgs(Input("{\"text\": \"the cat\"}"), missingModel), missingModel);

        string empty = _dir.File("empty.jsonl");
        File.WriteAllText(empty, "");
        AssertFails(InferArgs(empty), empty);
    }

    [Fact]
    public void AFailedInferLeavesAnEarlierOutputUntouched()
    {
        File.WriteAllText(Output, "earlier\n");
        var (code, _, _) = CliRun.Run(InferArgs(Input("{\"input_ids\": [2, 999, 3]}")));
        Assert.Equal(1, code);
        Assert.Equal("earlier\n", File.ReadAllText(Output));
        Assert.False(File.Exists(Output + ".partial"));
    }

    public static TheoryData<string[]> UsageErrors => new()
    {
        new[] { "infer", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", "--max-length", "8" },
        new[] { "infer", "--model", "m", "--output", "out.jsonl" },
        new[] { "infer", "--model", "m", "--input", "in.jsonl" },
        new[] { "infer", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", "--bogus", "1" },
        new[] { "infer", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", "--threads", "0" },
        new[] { "infer", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", "--threads", "two" },
        new[] { "infer", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", "--batch-size", "0" },
        new[] { "infer", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", "extra" },
        new[] { "classify", "--model", "m" },
        new[] { "classify", "--model", "m", "--threads", "x", "text" },
        new[] { "classify", "--model", "m", "--bogus", "text" },
        new[] { "classify", "--model", "m", " " },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public void UsageErrorsExitTwo(string[] args)
    {
        var (code, stdout, stderr) = CliRun.Run(args);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("error: ", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void ClassifyPrintsTheLabelAndItsSoftmaxProbability()
    {
        var engine = EngineFixtures.TinyF32.Value;
        foreach (var c in EngineFixtures.DenseCases().Where(c => c.Text is not null).Take(3))
        {
            string[] args = c.Pair is null
                ? ["classify", "--model", ModelTestFiles.TinyBert, "--threads", "1", c.Text!]
                : ["classify", "--model", ModelTestFiles.TinyBert, "--threads", "1", "--pair", c.Pair, c.Text!];
            var (code, stdout, stderr) = CliRun.Run(args);
            Assert.Equal(0, code);
            Assert.Equal("", stderr);
            var logits = engine.Run([c.Input])[0].Logits;
            int best = ArgMax(logits);
            var fields = stdout.TrimEnd().Split('\t');
            Assert.Equal(2, fields.Length);
            Assert.Equal(engine.Config.Labels[best], fields[0]);
            Assert.Equal(Softmax(logits)[best], double.Parse(fields[1],
                System.Globalization.CultureInfo.InvariantCulture), 4);
        }
    }

    [Fact]
    public void ClassifyJsonCarriesLabelProbabilityLogitsAndCosts()
    {
        var c = EngineFixtures.GatedCases().First(c => c.Pair is not null);
        var (code, stdout, stderr) = CliRun.Run("classify", "--model", EngineFixtures.TinyBertGated, "--json",
            "--threads", "1", "--pair", c.Pair!, c.Text!);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        var root = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(["label", "probability", "probabilities", "logits", "kept", "flops", "dense_flops"],
            root.EnumerateObject().Select(p => p.Name));
        var engine = EngineFixtures.Gated.Value;
        var alone = engine.Run([c.Input])[0];
        var logits = Floats(root.GetProperty("logits"));
        Assert.Equal(alone.Logits, logits);
        int best = ArgMax(logits);
        Assert.Equal(engine.Config.Labels[best], root.GetProperty("label").GetString());
        Assert.Equal(Softmax(logits)[best], root.GetProperty("probability").GetDouble(), 6);
        var probabilities = root.GetProperty("probabilities");
        Assert.Equal(engine.Config.Labels, probabilities.EnumerateObject().Select(p => p.Name));
        for (int i = 0; i < logits.Length; i++)
            Assert.Equal(Softmax(logits)[i], probabilities.GetProperty(engine.Config.Labels[i]).GetDouble(), 6);
        Assert.Equal(c.Gated!.Kept, Ints(root.GetProperty("kept")));
        Assert.Equal(c.Gated.MultiplyAdds, root.GetProperty("flops").GetInt64());
        Assert.Equal(c.Dense.MultiplyAdds, root.GetProperty("dense_flops").GetInt64());
    }

    [Fact]
    public void ClassifyExplainListsTheSurvivingWordsOfEveryLayer()
    {
        var c = EngineFixtures.GatedCases().First(c => c.Text is not null && c.Pair is null);
        var (code, stdout, stderr) = CliRun.Run("classify", "--model", EngineFixtures.TinyBertGated, "--explain",
            "--threads", "1", c.Text!);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        var tokens = BertCheckpoint.Load(EngineFixtures.TinyBertGated).RequireTokenizer()
            .Encode(c.Text!, null, 64).Tokens;
        var lines = stdout.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var layerLines = lines.Where(l => l.StartsWith("layer ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(c.Gated!.Kept!.Length, layerLines.Length);
        for (int j = 0; j < layerLines.Length; j++)
        {
            var survivors = c.Gated.Survivors![j];
            Assert.StartsWith($"layer {j}: {survivors.Length}/{c.Length} tokens: ", layerLines[j]);
            Assert.EndsWith(string.Join(' ', survivors.Select(p => tokens[p])), layerLines[j]);
        }
        Assert.Contains(lines, l => l.Contains($"{c.Gated.MultiplyAdds} of {c.Dense.MultiplyAdds}"));
    }

    [Fact]
    public void ClassifyJsonExplainCarriesTheSurvivingWordsAndStaysOneJsonLine()
    {
        var c = EngineFixtures.GatedCases().First(c => c.Text is not null && c.Pair is null);
        var (code, stdout, stderr) = CliRun.Run("classify", "--model", EngineFixtures.TinyBertGated, "--explain",
            "--json", "--threads", "1", c.Text!);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Single(stdout.TrimEnd().Split('\n'));
        var tokens = BertCheckpoint.Load(EngineFixtures.TinyBertGated).RequireTokenizer()
            .Encode(c.Text!, null, 64).Tokens;
        var layers = JsonDocument.Parse(stdout).RootElement.GetProperty("surviving_tokens").EnumerateArray()
            .Select(l => l.EnumerateArray().Select(t => t.GetString()!).ToArray()).ToArray();
        Assert.Equal(c.Gated!.Survivors!.Select(s => s.Select(p => tokens[p]).ToArray()).ToArray(), layers);
    }

    [Fact]
    public void ClassifyRejectsAMissingModel()
    {
        string missing = _dir.File("no-model");
        var (code, stdout, stderr) = CliRun.Run("classify", "--model", missing, "the cat");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", stderr);
        Assert.Contains(missing, stderr);
    }
}
