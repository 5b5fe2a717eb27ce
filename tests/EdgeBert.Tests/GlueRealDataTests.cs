using EdgeBert.Training;

namespace EdgeBert.Tests;

/// <summary>Locates ../shared/data next to the repository (never committed; CI provides it).</summary>
internal static class SharedData
{
    public static string Directory { get; } = System.IO.Directory.Exists(ModelTestFiles.SharedData)
        ? ModelTestFiles.SharedData
        : throw new DirectoryNotFoundException(
            $"shared test data not found at {ModelTestFiles.SharedData} (expected ../shared/data "
                + "next to the repository)");

    public static string Glue(string task) => Path.Combine(Directory, "glue", task);
}

/// <summary>The reader on the real GLUE files; counts and label distributions from shared/data/MANIFEST.md.</summary>
public class GlueRealDataTests
{
    [Theory]
    [InlineData("SST-2", GlueSplit.Train, 67_349, 29_780, 37_569)]
    [InlineData("SST-2", GlueSplit.Dev, 872, 428, 444)]
    [InlineData("CoLA", GlueSplit.Train, 8_551, 2_528, 6_023)]
    [InlineData("CoLA", GlueSplit.Dev, 1_043, 322, 721)]
    [InlineData("MRPC", GlueSplit.Train, 3_668, 1_194, 2_474)]
    [InlineData("MRPC", GlueSplit.Dev, 408, 129, 279)]
    [InlineData("RTE", GlueSplit.Train, 2_490, 1_249, 1_241)] // entailment, not_entailment
    [InlineData("RTE", GlueSplit.Dev, 277, 146, 131)]
    [InlineData("WNLI", GlueSplit.Train, 635, 323, 312)]
    [InlineData("WNLI", GlueSplit.Dev, 71, 40, 31)]
    [InlineData("QNLI", GlueSplit.Dev, 5_463, 2_702, 2_761)]
    public void BinaryTaskCountsMatchManifest(string name, GlueSplit split, int rows, int class0, int class1)
    {
        var task = GlueTask.Get(name);
        var examples = GlueReader.Read(task, SharedData.Glue(name), split);
        Assert.Equal(rows, examples.Count);
        Assert.Equal(class0, examples.Count(e => e.Label == 0));
        Assert.Equal(class1, examples.Count(e => e.Label == 1));
        // MANIFEST: no empty text fields in any kept file.
        Assert.All(examples, e => Assert.False(string.IsNullOrEmpty(e.TextA)));
        Assert.All(examples, e => Assert.Equal(task.IsPair, !string.IsNullOrEmpty(e.TextB)));
    }

    [Theory]
    [InlineData(GlueSplit.Train, 5_749)]
    [InlineData(GlueSplit.Dev, 1_500)]
    public void StsbScoresAreInRange(GlueSplit split, int rows)
    {
        var examples = GlueReader.Read(GlueTask.StsB, SharedData.Glue("STS-B"), split);
        Assert.Equal(rows, examples.Count);
        // MANIFEST: score range [0.0, 5.0].
        Assert.Equal(0f, examples.Min(e => e.Score));
        Assert.Equal(5f, examples.Max(e => e.Score));
    }

    [Fact]
    public void RealFilesKeepQuotesAndLineNumbers()
    {
        // dev.tsv line 2 (after the BOM+header) has a second string starting with an unbalanced quote.
        var mrpc = GlueReader.Read(GlueTask.Mrpc, SharedData.Glue("MRPC"), GlueSplit.Dev);
        Assert.StartsWith("\"The foodservice pie business", mrpc[0].TextB);
        Assert.Equal(2, mrpc[0].Line);
        Assert.Contains("\"100 percent behind George Bush\"", mrpc[1].TextB);

        var stsb = GlueReader.Read(GlueTask.StsB, SharedData.Glue("STS-B"), GlueSplit.Dev);
        Assert.Equal(("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 5f),
            (stsb[0].TextA, stsb[0].TextB, stsb[0].Score));

        // CoLA has no header: the first line is the first example; dev.tsv has no final newline.
        var cola = GlueReader.Read(GlueTask.Cola, SharedData.Glue("CoLA"), GlueSplit.Dev);
        Assert.Equal("The sailors rode the breeze clear of the rocks.", cola[0].TextA);
        Assert.Equal(1, cola[0].Line);
        Assert.Equal(1_043, cola[^1].Line);
    }
}
