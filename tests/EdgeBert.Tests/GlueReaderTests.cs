using System.Text;
using EdgeBert.Training;

namespace EdgeBert.Tests;

/// <summary>The reader on small crafted files in the official GLUE layouts.</summary>
public sealed class GlueReaderTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("edgebert-glue-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, string content)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllText(path, content, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        return path;
    }

    private InvalidDataException ReadFails(GlueTask task, string content)
    {
        string path = Write("bad.tsv", content);
        var error = Assert.Throws<InvalidDataException>(() => GlueReader.Read(task, path));
        Assert.Contains(path, error.Message);
        return error;
    }

    [Fact]
    public void Sst2KeepsTextVerbatimIncludingQuotesAndTrailingSpace()
    {
        string path = Write("sst.tsv",
            "sentence\tlabel\n" +
            "it 's a \"charming\" journey . \t1\n" +
            "\"unbalanced quote stays \t0\n");
        var examples = GlueReader.Read(GlueTask.Sst2, path);
        Assert.Equal(2, examples.Count);
        Assert.Equal("it 's a \"charming\" journey . ", examples[0].TextA);
        Assert.Null(examples[0].TextB);
        Assert.Equal(1, examples[0].Label);
        Assert.Equal(2, examples[0].Line);
        Assert.True(float.IsNaN(examples[0].Score));
        // Without quote handling the open quote neither swallows the tab nor the next line.
        Assert.Equal("\"unbalanced quote stays ", examples[1].TextA);
        Assert.Equal(0, examples[1].Label);
        Assert.Equal(3, examples[1].Line);
    }

    [Fact]
    public void ColaHasNoHeaderAndReadsSentenceAndLabelByPosition()
    {
        // source, label, original-label mark, sentence; no final newline (as the real dev.tsv).
        string path = Write("cola.tsv",
            "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n" +
            "bc01\t0\t*\tHe said \"go\" the door.");
        var examples = GlueReader.Read(GlueTask.Cola, path);
        Assert.Equal(2, examples.Count);
        Assert.Equal("The sailors rode the breeze clear of the rocks.", examples[0].TextA);
        Assert.Equal(1, examples[0].Label);
        Assert.Equal(1, examples[0].Line);
        Assert.Equal("He said \"go\" the door.", examples[1].TextA);
        Assert.Equal(0, examples[1].Label);
        Assert.Null(examples[1].TextB);
    }

    [Fact]
    public void MrpcSkipsBomAndReadsColumnsByName()
    {
        string path = Write("mrpc.tsv",
            "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" +
            "1\t1355540\t1355592\tHe said the pie business doesn't fit.\t\"The pie business does not " +
            "fit our strategy.\n" +
            "0\t2029631\t2029565\tFirst \"quoted\" text.\tSecond text.\n");
        var examples = GlueReader.Read(GlueTask.Mrpc, path);
        Assert.Equal(2, examples.Count);
        Assert.Equal("He said the pie business doesn't fit.", examples[0].TextA);
        Assert.Equal("\"The pie business does not fit our strategy.", examples[0].TextB);
        Assert.Equal(1, examples[0].Label);
        Assert.Equal("First \"quoted\" text.", examples[1].TextA);
        Assert.Equal(0, examples[1].Label);
    }

    [Fact]
    public void HeaderColumnsAreFoundByNameInAnyOrder()
    {
        string path = Write("rte.tsv",
            "label\tsentence2\tindex\tsentence1\n" +
            "not_entailment\thypothesis\t0\tpremise\n");
        var example = Assert.Single(GlueReader.Read(GlueTask.Rte, path));
        Assert.Equal("premise", example.TextA);
        Assert.Equal("hypothesis", example.TextB);
        Assert.Equal(1, example.Label);
    }

    [Fact]
    public void LabelIndicesFollowTheTaskLabelLists()
    {
        Assert.Equal(["0", "1"], GlueTask.Sst2.Labels);
        Assert.Equal(["0", "1"], GlueTask.Cola.Labels);
        Assert.Equal(["0", "1"], GlueTask.Mrpc.Labels);
        Assert.Equal(["0", "1"], GlueTask.Qqp.Labels);
        Assert.Equal(["0", "1"], GlueTask.Wnli.Labels);
        Assert.Equal(["entailment", "not_entailment"], GlueTask.Rte.Labels);
        Assert.Equal(["entailment", "not_entailment"], GlueTask.Qnli.Labels);
        Assert.Equal(["contradiction", "entailment", "neutral"], GlueTask.Mnli.Labels);
        Assert.Empty(GlueTask.StsB.Labels);
        Assert.True(GlueTask.StsB.IsRegression);
        Assert.Equal(1, GlueTask.StsB.NumLabels);
        Assert.Equal(3, GlueTask.Mnli.NumLabels);
        Assert.False(GlueTask.Sst2.IsPair);
        Assert.False(GlueTask.Cola.IsPair);
        Assert.All(GlueTask.All.Where(t => t != GlueTask.Sst2 && t != GlueTask.Cola), t => Assert.True(t.IsPair));
    }

    [Fact]
    public void MnliReadsTrainAndDevMatchedLayouts()
    {
        string parses = "(a)\t(b)\t(A)\t(B)";
        string train = Write("mnli-train.tsv",
            "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t" +
            "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n" +
            $"0\t31193\t31193n\tgovernment\t{parses}\tPremise one.\tHypothesis one.\tneutral\tneutral\n");
        string dev = Write("mnli-dev.tsv",
            "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t" +
            "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\t" +
            "label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
            $"0\t63735\t63735n\tslate\t{parses}\tPremise two.\tHypothesis two.\t" +
            "neutral\tentailment\tneutral\tneutral\tneutral\tcontradiction\n");
        var trainExample = Assert.Single(GlueReader.Read(GlueTask.Mnli, train));
        Assert.Equal(("Premise one.", "Hypothesis one.", 2),
            (trainExample.TextA, trainExample.TextB, trainExample.Label));
        // gold_label, not label1, is the label.
        var devExample = Assert.Single(GlueReader.Read(GlueTask.Mnli, dev));
        Assert.Equal(("Premise two.", "Hypothesis two.", 0), (devExample.TextA, devExample.TextB, devExample.Label));
        Assert.Equal("dev_matched.tsv", GlueTask.Mnli.DevFileName);
    }

    [Fact]
    public void QqpQnliAndWnliReadTheirColumns()
    {
        string qqp = Write("qqp.tsv",
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n" +
            "402555\t536040\t536041\tHow do I \"fix\" it?\tHow to fix it?\t1\n");
        var q = Assert.Single(GlueReader.Read(GlueTask.Qqp, qqp));
        Assert.Equal(("How do I \"fix\" it?", "How to fix it?", 1), (q.TextA, q.TextB, q.Label));

        string qnli = Write("qnli.tsv", "index\tquestion\tsentence\tlabel\n0\tWhat?\tThat.\tnot_entailment\n");
        var n = Assert.Single(GlueReader.Read(GlueTask.Qnli, qnli));
        Assert.Equal(("What?", "That.", 1), (n.TextA, n.TextB, n.Label));

        string wnli = Write("wnli.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\t0\n");
        var w = Assert.Single(GlueReader.Read(GlueTask.Wnli, wnli));
        Assert.Equal(("A.", "B.", 0), (w.TextA, w.TextB, w.Label));
    }

    [Fact]
    public void StsbReadsScoreAmongManyColumns()
    {
        string path = Write("stsb.tsv",
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n" +
            "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is " +
            "taking off.\t5.000\n" +
            "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays.\tA man plays a flute.\t3.800\n");
        var examples = GlueReader.Read(GlueTask.StsB, path);
        Assert.Equal(2, examples.Count);
        Assert.Equal(5.0f, examples[0].Score);
        Assert.Equal(3.8f, examples[1].Score);
        Assert.Equal(-1, examples[1].Label);
        Assert.Equal("A man plays.", examples[1].TextA);
        Assert.Equal("A man plays a flute.", examples[1].TextB);
    }

    [Fact]
    public void CarriageReturnsBeforeNewlinesAreDropped()
    {
        string path = Write("crlf.tsv", "sentence\tlabel\r\ngood\t1\r\nbad\t0\r\n");
        var examples = GlueReader.Read(GlueTask.Sst2, path);
        Assert.Equal([1, 0], examples.Select(e => e.Label));
        Assert.Equal("good", examples[0].TextA);
    }

    [Fact]
    public void WrongColumnCountNamesFileAndLine()
    {
        var error = ReadFails(GlueTask.Sst2, "sentence\tlabel\nfine\t1\ntoo\tmany\t1\n");
        Assert.Contains("line 3", error.Message);
        Assert.Contains("expected 2", error.Message);
        Assert.Contains("found 3", error.Message);

        // CoLA without the empty original-label column: 3 columns instead of 4, on line 2.
        error = ReadFails(GlueTask.Cola, "gj04\t1\t\tGood.\ngj04\t1\tShort row.\n");
        Assert.Contains("line 2", error.Message);

        // A blank line inside the file is a malformed row, not skipped silently.
        error = ReadFails(GlueTask.Sst2, "sentence\tlabel\na\t1\n\nb\t0\n");
        Assert.Contains("line 3", error.Message);
    }

    [Fact]
    public void UnknownLabelNamesFileLineAndLabel()
    {
        var error = ReadFails(GlueTask.Rte,
            "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tneutral\n");
        Assert.Contains("line 3", error.Message);
        Assert.Contains("'neutral'", error.Message);

        error = ReadFails(GlueTask.Sst2, "sentence\tlabel\ngood\t2\n");
        Assert.Contains("line 2", error.Message);
    }

    [Fact]
    public void UnparsableScoreNamesFileAndLine()
    {
        const string header =
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
        const string row = "0\tg\tf\ty\to\ts\ts\ta\tb\t";
        var error = ReadFails(GlueTask.StsB, header + row + "4.0\n" + row + "4,5\n");
        Assert.Contains("line 3", error.Message);
        Assert.Contains("'4,5'", error.Message);
        Assert.Contains("line 2", ReadFails(GlueTask.StsB, header + row + "NaN\n").Message);
    }

    [Fact]
    public void UnlabelledTestFilesAreRejected()
    {
        var error = ReadFails(GlueTask.Sst2, "index\tsentence\n0\tsome text\n");
        Assert.Contains("'label'", error.Message);
        Assert.Contains("test", error.Message);

        // CoLA's test.tsv is the one CoLA file with a header.
        error = ReadFails(GlueTask.Cola, "index\tsentence\n0\tBill whistled past the house.\n");
        Assert.Contains("test file", error.Message);
    }

    [Fact]
    public void MissingTextColumnEmptyFileAndBadUtf8AreReported()
    {
        Assert.Contains("'sentence2'", ReadFails(GlueTask.Rte, "index\tsentence1\tlabel\n0\ta\tentailment\n").Message);
        Assert.Contains("empty", ReadFails(GlueTask.Cola, "").Message);

        string path = Path.Combine(_directory, "latin1.tsv");
        File.WriteAllBytes(path, [.. "sentence\tlabel\nok\t1\ncaf"u8, 0xE9, .. "\t1\n"u8]);
        var error = Assert.Throws<InvalidDataException>(() => GlueReader.Read(GlueTask.Sst2, path));
        Assert.Contains("line 3", error.Message);
        Assert.Contains("UTF-8", error.Message);
    }

    [Theory]
    [InlineData("sst2", "SST-2")]
    [InlineData("SST-2", "SST-2")]
    [InlineData("cola", "CoLA")]
    [InlineData("sts-b", "STS-B")]
    [InlineData("stsb", "STS-B")]
    [InlineData("MNLI", "MNLI")]
    [InlineData("qqp", "QQP")]
    public void TasksAreFoundByLooseName(string name, string expected) =>
        Assert.Equal(expected, GlueTask.Get(name).Name);

    [Fact]
    public void UnknownTaskListsTheKnownOnes()
    {
        var error = Assert.Throws<ArgumentException>(() => GlueTask.Get("squad"));
        Assert.Contains("SST-2", error.Message);
        Assert.False(GlueTask.TryGet("squad", out _));
    }
}
