using System.Globalization;
using System.Xml.Linq;
using EdgeBert.Cli;
using EdgeBert.Training;

namespace EdgeBert.Tests;

static class SweepTestRows
{
    public static SweepRow Dense(double metric) => new(null, "accuracy", metric, metric, 1, 2.0, 1, [20, 20]);
    public static SweepRow Gated(double lambda, double metric, double flopsRatio, double speedup) =>
        new(lambda, "accuracy", metric + 0.001, metric, flopsRatio, 2.0 / speedup, speedup, [12.5, 3.25]);

    /// <summary>Runs <paramref name="body"/> under a culture whose decimal separator is a comma.</summary>
    public static void WithCommaCulture(Action body)
    {
        var saved = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
        try { body(); }
        finally { CultureInfo.CurrentCulture = saved; }
    }
}

public class SweepPlotTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    static double Attr(XElement e, string name) => double.Parse(e.Attribute(name)!.Value, CultureInfo.InvariantCulture);

    [Fact]
    public void SvgIsWellFormedWithOnePointPerRowAndTheDenseMarkerInEachPanel()
    {
        SweepRow[] rows =
        [
            SweepTestRows.Gated(2, 0.85, 4.0, 3.1), SweepTestRows.Dense(0.91),
            SweepTestRows.Gated(0.5, 0.905, 1.8, 1.6), SweepTestRows.Gated(1, 0.89, 2.6, 2.2),
        ];
        string svg = "";
        SweepTestRows.WithCommaCulture(() => svg = TradeoffPlot.Svg(rows, "SST-2 dev"));
        var doc = XDocument.Parse(svg);
        Assert.Equal(Svg + "svg", doc.Root!.Name);

        var panels = doc.Descendants(Svg + "g").Where(g => (string?)g.Attribute("class") == "panel").ToList();
        Assert.Equal(2, panels.Count);
        var xs = new Func<SweepRow, double>[] { r => r.FlopsRatio, r => r.Speedup };
        for (int p = 0; p < 2; p++)
        {
            var points = panels[p].Elements()
                .Where(e => ((string?)e.Attribute("class"))?.Split(' ').Contains("point") == true).ToList();
            Assert.Equal(rows.Length, points.Count);
            Assert.Single(points, e => ((string)e.Attribute("class")!).Split(' ').Contains("dense"));
            Assert.Contains(panels[p].Elements(Svg + "text"), t => t.Value == "dense");

            // Circles sit where their values say: larger x to the right, larger metric higher up, all inside the frame.
            var frame = panels[p].Element(Svg + "rect")!;
            double left = Attr(frame, "x"), top = Attr(frame, "y"), right = left + Attr(frame, "width"),
                bottom = top + Attr(frame, "height");
            var circles = points.Where(e => e.Name == Svg + "circle")
                .Select(c => (Row: rows.Single(r => r.Lambda is { } l
                    && SweepFiles.FormatLambda(l) == (string)c.Attribute("data-lambda")!),
                              Cx: Attr(c, "cx"), Cy: Attr(c, "cy"))).ToList();
            Assert.Equal(3, circles.Count);
            foreach (var c in circles)
            {
                Assert.InRange(c.Cx, left, right);
                Assert.InRange(c.Cy, top, bottom);
                Assert.Contains(panels[p].Elements(Svg + "text"),
                    t => t.Value == $"λ={SweepFiles.FormatLambda(c.Row.Lambda!.Value)}");
            }
            var byX = circles.OrderBy(c => xs[p](c.Row)).Select(c => c.Cx).ToList();
            Assert.Equal(byX.Order(), byX);
            var byMetric = circles.OrderBy(c => c.Row.MetricHard).Select(c => c.Cy).ToList();
            Assert.Equal(byMetric.OrderDescending(), byMetric);

            // Both axes carry numeric tick labels and a title.
            var ticks = panels[p].Elements(Svg + "text").Where(t => (string?)t.Attribute("class") == "tick").ToList();
            Assert.True(ticks.Count >= 4, $"only {ticks.Count} tick labels");
            Assert.All(ticks, t => double.Parse(t.Value, CultureInfo.InvariantCulture));
            Assert.Equal(2, panels[p].Elements(Svg + "text").Count(t => (string?)t.Attribute("class") == "axis-label"));
        }
    }

    [Fact]
    public void PointsWithoutAFiniteValueAreLeftOutOfThatPanelOnly()
    {
        SweepRow[] rows = [SweepTestRows.Dense(0.9), SweepTestRows.Gated(1, 0.88, 2, double.NaN)];
        var panels = XDocument.Parse(TradeoffPlot.Svg(rows, "t")).Descendants(Svg + "g").ToList();
        Assert.Equal(2, panels[0].Elements()
            .Count(e => ((string?)e.Attribute("class"))?.StartsWith("point", StringComparison.Ordinal) == true
            && e.Name != Svg + "text"));
        Assert.Equal(1, panels[1].Elements()
            .Count(e => ((string?)e.Attribute("class"))?.StartsWith("point", StringComparison.Ordinal) == true
            && e.Name != Svg + "text"));
    }
}

public class SweepFilesTests
{
    [Fact]
    public void CsvHasTheHeaderTheDenseRowFirstAndInvariantNumbers()
    {
        SweepRow[] rows = [SweepTestRows.Gated(0.5, 0.9, 1.75, 1.5), SweepTestRows.Dense(0.9125),
            SweepTestRows.Gated(1e-5, 0.91, 1.01, 1.0)];
        string csv = "";
        SweepTestRows.WithCommaCulture(() => csv = SweepFiles.Csv(rows));
        var lines = csv.TrimEnd('\n').Split('\n');
        Assert.Equal("lambda,metric_name,metric_soft,metric_hard,flops_ratio,ms_per_example,speedup,kept_per_layer",
            lines[0]);
        Assert.Equal(1 + rows.Length, lines.Length);

        var fields = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.All(fields, f => Assert.Equal(8, f.Length));
        Assert.Equal("dense", fields[0][0]);
        var expected = new[] { rows[1], rows[0], rows[2] };
        for (int i = 0; i < expected.Length; i++)
        {
            var (f, r) = (fields[i], expected[i]);
            if (r.Lambda is { } lambda) Assert.Equal(lambda, double.Parse(f[0], CultureInfo.InvariantCulture));
            Assert.Equal("accuracy", f[1]);
            double[] values = [r.MetricSoft, r.MetricHard, r.FlopsRatio, r.MillisecondsPerExample, r.Speedup];
            for (int k = 0; k < values.Length; k++)
                Assert.Equal(values[k], double.Parse(f[2 + k], CultureInfo.InvariantCulture), 3);
            var kept = f[7].Split(' ').Select(k => double.Parse(k, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(r.KeptPerLayer, kept);
        }
    }

    [Fact]
    public void SummaryNamesTheLargestFlopsReductionWithinOnePointOfDense()
    {
        var dense = SweepTestRows.Dense(0.90);
        var close = SweepTestRows.Gated(0.5, 0.897, 2.0, 1.8);
        var boundary = SweepTestRows.Gated(1, 0.89, 3.0, 2.5);   // exactly 1.0 point below: still within
        var far = SweepTestRows.Gated(4, 0.85, 6.0, 4.0);
        SweepRow[] rows = [dense, close, boundary, far];
        Assert.Same(boundary, SweepFiles.BestWithinOnePoint(rows));

        string md = SweepFiles.Markdown(GlueTask.Sst2, rows);
        var table = md.Split('\n').Where(l => l.StartsWith('|')).ToList();
        Assert.Equal(2 + rows.Length, table.Count);                // header, separator, one line per model
        Assert.StartsWith("| dense |", table[2]);
        Assert.Contains("lambda 1, 3.00x fewer FLOPs", md);
        Assert.Contains("| -5.00 |", table[5]);                    // 0.85 vs 0.90: five points down

        // A model that saves nothing is no answer, however accurate.
        var idle = SweepTestRows.Gated(0.01, 0.90, 1.0, 1.0);
        Assert.Null(SweepFiles.BestWithinOnePoint([dense, idle, far]));
        Assert.Contains("No lambda reduces FLOPs", SweepFiles.Markdown(GlueTask.Sst2, [dense, idle, far]));
    }

    [Fact]
    public void LambdaFoldersUseTheShortestInvariantText()
    {
        SweepTestRows.WithCommaCulture(() =>
        {
            Assert.Equal("lambda-0.5", SweepFiles.LambdaFolder(0.5));
            Assert.Equal("lambda-2", SweepFiles.LambdaFolder(2));
            Assert.Equal(0.1, double.Parse(SweepFiles.FormatLambda(0.1), CultureInfo.InvariantCulture));
        });
    }
}

/// <summary>The whole verb on the synthetic marker task of <see cref="GateLearningTests"/>,
/// written as SST-2 files.</summary>
public class SweepEndToEndTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static string WriteTask(string dir)
    {
        var (vocab, train, dev) = GateLearningTests.MakeTask(dir);
        string data = Path.Combine(dir, "data");
        Directory.CreateDirectory(data);
        foreach (var (file, examples) in new[] { ("train.tsv", train), ("dev.tsv", dev) })
            File.WriteAllLines(Path.Combine(data, file),
                examples.Select(e => $"{e.TextA}\t{e.Label}").Prepend("sentence\tlabel"));
        return vocab;
    }

    static string[] Args(string dir, string vocab, int epochs = 2) =>
    [
        "sweep", "--task", "SST-2", "--data", Path.Combine(dir, "data"), "--init", "random:tiny", "--vocab", vocab,
        "--lambdas", "0.002,4", "--out", Path.Combine(dir, "out"), "--epochs",
        epochs.ToString(CultureInfo.InvariantCulture),
        "--lr", "2e-3", "--max-len", "32", "--gate-positions", "32", "--gate-lr", "5e-2", "--threads", "2", "--seed",
        "3",
        "--max-train", "400", "--timing-examples", "20",
    ];

    [Fact]
    public void SweepWritesOneRowPerModelAndResumesWithoutRetraining()
    {
        using var dir = new ModelTestFiles.TempDir();
        string vocab = WriteTask(dir.Path), outDir = Path.Combine(dir.Path, "out");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, CliApp.Run(Args(dir.Path, vocab), stdout, stderr));
        output.WriteLine(stdout.ToString());

        foreach (var file in new[] { "results.csv", "tradeoff.svg", "summary.md" })
            Assert.True(File.Exists(Path.Combine(outDir, file)), file);
        foreach (var model in new[] { "dense", "lambda-0.002", "lambda-4" })
        {
            Assert.True(File.Exists(Path.Combine(outDir, model, Sweep.FinishedMarker)), model);
            Assert.False(Directory.Exists(Path.Combine(outDir, model, FineTuner.ResumeFolder)),
                $"{model} kept its resume state");
        }

        var csv = File.ReadAllLines(Path.Combine(outDir, "results.csv"));
        Assert.Equal(1 + 1 + 2, csv.Length);
        var rows = csv.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["dense", "0.002", "4"], rows.Select(r => r[0]));
        double Field(int row, int column) => double.Parse(rows[row][column], CultureInfo.InvariantCulture);
        Assert.Equal(1.0, Field(0, 4));
        Assert.True(Field(2, 4) >= Field(1, 4), $"lambda 4 saves less than lambda 0.002:\n{string.Join('\n', csv)}");
        Assert.True(Field(0, 3) >= 0.9, $"the dense model did not learn the task:\n{string.Join('\n', csv)}");
        Assert.All(rows, r => Assert.Equal(2, r[7].Split(' ').Length));   // tiny: two layers

        var svg = XDocument.Parse(File.ReadAllText(Path.Combine(outDir, "tradeoff.svg")));
        Assert.Equal(2 * 3, svg.Descendants()
            .Count(e => ((string?)e.Attribute("class"))?.Split(' ').Contains("point") == true));

        // The same command again reuses every model (bit for bit) and recomputes the same exact columns.
        var weights = File.ReadAllBytes(Path.Combine(outDir, "lambda-4", "model.safetensors"));
        var again = new StringWriter();
        Assert.Equal(0, CliApp.Run(Args(dir.Path, vocab), again, new StringWriter()));
        Assert.Equal(3, again.ToString().Split('\n').Count(l => l.Contains("not retrained")));
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(outDir, "lambda-4", "model.safetensors")));
        var csvAgain = File.ReadAllLines(Path.Combine(outDir, "results.csv")).Skip(1).Select(l => l.Split(','))
            .ToList();
        for (int r = 0; r < rows.Count; r++)
            foreach (int c in new[] { 0, 1, 2, 3, 4, 7 }) Assert.Equal(rows[r][c], csvAgain[r][c]);

        // Other training settings must not silently reuse these models.
        var error = new StringWriter();
        Assert.Equal(1, CliApp.Run(Args(dir.Path, vocab, epochs: 1), new StringWriter(), error));
        Assert.Contains("epochs 2 -> 1", error.ToString());
        // Distillation changes the gated models only: the dense one is reused, the first gated one refuses.
        var distilled = new StringWriter();
        error = new StringWriter();
        Assert.Equal(1, CliApp.Run([.. Args(dir.Path, vocab), "--distill", "0.5"], distilled, error));
        Assert.Contains("not retrained", distilled.ToString().Split('\n').First(l => l.Contains("dense")));
        Assert.Contains("distill unset -> 0.5", error.ToString());
    }

    [Fact]
    public void DistillingSweepTrainsItsDenseBaselineWithoutATeacher()
    {
        using var dir = new ModelTestFiles.TempDir();
        string vocab = WriteTask(dir.Path);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] args = [.. Args(dir.Path, vocab, epochs: 1), "--distill", "0.5"];
        args[Array.IndexOf(args, "0.002,4")] = "4";
        Assert.Equal(0, CliApp.Run(args, stdout, stderr));
        Assert.Contains("distilling the dense --init model with weight 0.5", stdout.ToString());
        Assert.True(File.Exists(Path.Combine(dir.Path, "out", "lambda-4", Sweep.FinishedMarker)),
            stdout.ToString() + stderr);
    }

    [Fact]
    public void SweepRejectsFreezeGates()
    {
        var stderr = new StringWriter();
        Assert.NotEqual(0, CliApp.Run(["sweep", "--task", "SST-2", "--data", ".", "--init", "random:tiny", "--lambdas",
            "0.1", "--out", "x", "--freeze-gates"],
            new StringWriter(), stderr));
        Assert.Contains("--freeze-gates", stderr.ToString());
    }

    [Theory]
    [InlineData("0.5,x")]
    [InlineData("1,1")]
    [InlineData("-1")]
    public void BadLambdasAreUsageErrors(string lambdas)
    {
        var stderr = new StringWriter();
        int code = CliApp.Run(["sweep", "--task", "SST-2", "--data", ".", "--init", "random:tiny", "--lambdas", lambdas,
            "--out", "x"],
            new StringWriter(), stderr);
        Assert.Equal(2, code);
        Assert.Contains("--lambdas", stderr.ToString());
    }
}
