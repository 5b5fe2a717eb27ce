using System.Text.Json.Nodes;
using EdgeBert.Kernels;
using EdgeBert.Model;
using Xunit.Abstractions;

namespace EdgeBert.Tests;

/// <summary>One input of a PyTorch fixture and the float64 outputs expected for it.</summary>
sealed record ExpectedRun(double[] Logits, double[] Hidden, long MultiplyAdds = 0, int[]? Kept = null,
    int[][]? Survivors = null);

sealed record FixtureCase(string Name, string? Text, string? Pair, int[] Ids, int[] Types, ExpectedRun Dense,
    ExpectedRun? Gated = null)
{
    public SequenceInput Input => new(Ids, Types);
    public int Length => Ids.Length;
    public override string ToString() => Name;
}

/// <summary>The fixtures written by tools/make_fixtures.py (float64 PyTorch references) and the engines
/// that load them. Engines are immutable and shared: tests only run them.</summary>
static class EngineFixtures
{
    public static string TinyBertGated => Path.Combine(ModelTestFiles.Fixtures, "tiny_bert_gated");

    static readonly Lazy<JsonObject> DenseDoc = new(ModelTestFiles.Expected);
    static readonly Lazy<JsonObject> GatedDoc = new(() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(ModelTestFiles.Fixtures,
            "tiny_bert_gated_expected.json")))!);

    public static readonly Lazy<BertEngine> TinyF32 = new(() => Load(ModelTestFiles.TinyBert));
    public static readonly Lazy<BertEngine> TinyF16 = new(() => Load(ModelTestFiles.TinyBertF16));
    public static readonly Lazy<BertEngine> Gated = new(() => Load(TinyBertGated));

    public static BertEngine Load(string dir, Isa? isa = null) =>
        BertEngine.Load(BertCheckpoint.Load(dir), new EngineOptions { Isa = isa });

    /// <summary>The cases of tiny_bert_expected.json, with the F32 or the F16-rounded expectations.</summary>
    public static IReadOnlyList<FixtureCase> DenseCases(bool f16 = false)
    {
        string tag = f16 ? "_f16" : "";
        return DenseDoc.Value["cases"]!.AsArray().Select((node, i) =>
        {
            var c = node!.AsObject();
            var ids = Ints(c["input_ids"]!);
            return new FixtureCase($"case {i} (n={ids.Length})", (string?)c["text"], (string?)c["pair"], ids,
                Ints(c["token_type_ids"]!),
                new ExpectedRun(Doubles(c["logits" + tag]!), Flatten(c["last_hidden_state" + tag]!)));
        }).ToList();
    }

    public static IReadOnlyList<int> GateKeptCounts => Ints(GatedDoc.Value["gate_kept_counts"]!);

    /// <summary>The cases of tiny_bert_gated_expected.json: dense and hard-gated expectations.</summary>
    public static IReadOnlyList<FixtureCase> GatedCases() =>
        GatedDoc.Value["cases"]!.AsArray().Select((node, i) =>
        {
            var c = node!.AsObject();
            var ids = Ints(c["input_ids"]!);
            var dense = c["dense"]!.AsObject();
            var gated = c["gated"]!.AsObject();
            return new FixtureCase($"gated case {i} (n={ids.Length})", (string?)c["text"], (string?)c["pair"], ids,
                Ints(c["token_type_ids"]!),
                new ExpectedRun(Doubles(dense["logits"]!), Flatten(dense["last_hidden_state"]!),
                    (long)dense["multiply_adds"]!),
                new ExpectedRun(Doubles(gated["logits"]!), Flatten(gated["last_hidden_state"]!),
                    (long)gated["multiply_adds"]!,
                    Ints(gated["kept"]!), gated["survivors"]!.AsArray().Select(s => Ints(s!)).ToArray()));
        }).ToList();

    static int[] Ints(JsonNode n) => n.AsArray().Select(v => (int)v!).ToArray();
    static double[] Doubles(JsonNode n) => n.AsArray().Select(v => (double)v!).ToArray();
    static double[] Flatten(JsonNode rows) => rows.AsArray().SelectMany(r => Doubles(r!)).ToArray();

    public static double RelativeError(ReadOnlySpan<float> actual, IReadOnlyList<double> expected) =>
        KernelCheck.RelativeErrorNorm(actual, expected.ToArray());

    /// <summary>Random id sequences of the given lengths, [CLS] ... [SEP] with a second segment from length 5
    /// on.</summary>
    public static List<SequenceInput> RandomSequences(BertConfig config, IEnumerable<int> lengths, int seed)
    {
        var random = new Random(seed);
        var result = new List<SequenceInput>();
        foreach (int n in lengths)
        {
            var ids = new int[n];
            var types = new int[n];
            for (int i = 0; i < n; i++) ids[i] = random.Next(5, config.VocabSize);
            if (n >= 2) { ids[0] = 2; ids[^1] = 3; }
            if (n >= 5) for (int i = n / 2; i < n; i++) types[i] = 1;
            result.Add(new SequenceInput(ids, types));
        }
        return result;
    }

    /// <summary>Every field of two results equal, floats bit for bit.</summary>
    public static void AssertSame(SequenceResult expected, SequenceResult actual, string what)
    {
        Assert.True(expected.Logits.AsSpan().SequenceEqual(actual.Logits), $"{what}: logits differ");
        Assert.True(expected.Kept.AsSpan().SequenceEqual(actual.Kept), $"{what}: kept differs");
        Assert.True(expected.Flops == actual.Flops && expected.DenseFlops == actual.DenseFlops,
            $"{what}: flops differ");
        if (expected.Hidden is not null)
            Assert.True(expected.Hidden.AsSpan().SequenceEqual(actual.Hidden), $"{what}: hidden states differ");
        if (expected.Survivors is not null)
            for (int j = 0; j < expected.Survivors.Length; j++)
                Assert.True(expected.Survivors[j].AsSpan().SequenceEqual(actual.Survivors![j]),
                    $"{what}: survivors of layer {j} differ");
    }
}

/// <summary>The engine against the float64 PyTorch forward pass of tools/make_fixtures.py: single
/// sentences, pairs and id sequences of lengths 1..max_position_embeddings, F32 and F16 checkpoints.</summary>
public sealed class EngineParityTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryCaseMatchesPyTorch(bool f16)
    {
        var engine = (f16 ? EngineFixtures.TinyF16 : EngineFixtures.TinyF32).Value;
        var cases = EngineFixtures.DenseCases(f16);
        Assert.Contains(cases, c => c.Pair is not null);
        Assert.Contains(cases, c => c.Length == 1);
        Assert.Contains(cases, c => c.Length == engine.Config.MaxPositionEmbeddings);
        double worstLogits = 0, worstHidden = 0;
        foreach (var c in cases)
        {
            var r = engine.Run([c.Input], new RunOptions(ReturnHidden: true))[0];
            double logits = EngineFixtures.RelativeError(r.Logits, c.Dense.Logits);
            double hidden = EngineFixtures.RelativeError(r.Hidden, c.Dense.Hidden);
            Assert.True(logits <= Tolerance, $"{c}: logits relative error {logits:E2}");
            Assert.True(hidden <= Tolerance, $"{c}: hidden relative error {hidden:E2}");
            Assert.Equal(Enumerable.Repeat(c.Length, engine.Config.NumHiddenLayers), r.Kept);
            worstLogits = Math.Max(worstLogits, logits);
            worstHidden = Math.Max(worstHidden, hidden);
        }
        output.WriteLine($"{(f16 ? "F16" : "F32")}: worst relative error logits {worstLogits:E2}, "
            + $"hidden {worstHidden:E2} over {cases.Count} cases");
    }

    [Fact]
    public void TextCasesTokenizeToTheFixtureIds()
    {
        var checkpoint = BertCheckpoint.Load(ModelTestFiles.TinyBert);
        foreach (var c in EngineFixtures.DenseCases().Where(c => c.Text is not null))
        {
            var encoded = checkpoint.RequireTokenizer().Encode(c.Text!, c.Pair, checkpoint.MaxSequenceLength);
            Assert.Equal(c.Ids, encoded.InputIds);
            Assert.Equal(c.Types, encoded.TokenTypeIds);
        }
    }

    [Fact]
    public void FlopsOfADenseModelAreTheDenseCount()
    {
        var engine = EngineFixtures.TinyF32.Value;
        var config = engine.Config;
        foreach (var c in EngineFixtures.DenseCases())
        {
            var r = engine.Run([c.Input])[0];
            Assert.Equal(r.DenseFlops, r.Flops);
            Assert.Equal(FlopCounter.DenseMultiplyAdds(config.HiddenSize, config.IntermediateSize, engine.NumLabels,
                config.NumHiddenLayers, c.Length), r.Flops);
        }
    }
}
