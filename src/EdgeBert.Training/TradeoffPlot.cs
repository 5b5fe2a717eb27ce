using System.Globalization;
using System.Xml.Linq;

namespace EdgeBert.Training;

/// <summary>The sweep's trade-off plot as a standalone SVG: two panels side by side, the hard dev metric
/// against the FLOPs ratio and against the measured speed-up. Gated models are circles labelled with
/// their lambda, the dense baseline is a diamond labelled "dense"; a thin line joins the points in
/// lambda order. Points with a non-finite coordinate (a diverged model) are left out.</summary>
public static class TradeoffPlot
{
    const double PanelWidth = 480, PanelHeight = 360;
    const double Left = 70, Right = 24, Top = 44, Bottom = 56;
    static readonly XNamespace Ns = "http://www.w3.org/2000/svg";

    public static string Svg(IReadOnlyList<SweepRow> rows, string title)
    {
        if (rows.Count == 0) throw new ArgumentException("nothing to plot");
        string metric = rows[0].MetricName;
        var ordered = rows.OrderBy(r => r.IsDense ? double.NegativeInfinity : r.Lambda!.Value).ToList();
        var root = new XElement(Ns + "svg",
            new XAttribute("width", Num(2 * PanelWidth)), new XAttribute("height", Num(PanelHeight)),
            new XAttribute("viewBox", $"0 0 {Num(2 * PanelWidth)} {Num(PanelHeight)}"),
            new XAttribute("font-family", "sans-serif"), new XAttribute("font-size", "12"),
            new XElement(Ns + "rect", new XAttribute("width", "100%"), new XAttribute("height", "100%"),
                new XAttribute("fill", "white")),
            Panel(ordered, 0, $"{title}: {metric} vs FLOPs reduction", "FLOPs ratio (dense / gated)", metric,
                r => r.FlopsRatio),
            Panel(ordered, PanelWidth, $"{title}: {metric} vs measured speed-up",
                "measured speed-up at 1 thread (dense ms / gated ms)", metric, r => r.Speedup));
        return new XDocument(new XDeclaration("1.0", "utf-8", null), root).Declaration + "\n" + root + "\n";
    }

    static XElement Panel(List<SweepRow> rows, double offsetX, string title, string xLabel, string metric,
        Func<SweepRow, double> x)
    {
        var shown = rows.Where(r => double.IsFinite(x(r)) && double.IsFinite(r.MetricHard)).ToList();
        var xAxis = Axis.For(shown.Select(x).Append(1.0));
        var yAxis = Axis.For(shown.Select(r => r.MetricHard));
        double plotWidth = PanelWidth - Left - Right, plotHeight = PanelHeight - Top - Bottom;
        double Px(double v) => Left + (v - xAxis.Min) / (xAxis.Max - xAxis.Min) * plotWidth;
        double Py(double v) => Top + (1 - (v - yAxis.Min) / (yAxis.Max - yAxis.Min)) * plotHeight;

        var panel = new XElement(Ns + "g", new XAttribute("class", "panel"),
            new XAttribute("transform", $"translate({Num(offsetX)},0)"),
            Text(PanelWidth / 2, 22, title, "middle", "title", bold: true),
            new XElement(Ns + "rect", new XAttribute("x", Num(Left)), new XAttribute("y", Num(Top)),
                new XAttribute("width", Num(plotWidth)), new XAttribute("height", Num(plotHeight)),
                new XAttribute("fill", "none"), new XAttribute("stroke", "#444")));
        foreach (var t in xAxis.Ticks)
        {
            double px = Px(t);
            panel.Add(Line(px, Top, px, Top + plotHeight, "#e4e4e4"),
                Line(px, Top + plotHeight, px, Top + plotHeight + 5, "#444"),
                Text(px, Top + plotHeight + 18, xAxis.Format(t), "middle", "tick"));
        }
        foreach (var t in yAxis.Ticks)
        {
            double py = Py(t);
            panel.Add(Line(Left, py, Left + plotWidth, py, "#e4e4e4"), Line(Left - 5, py, Left, py, "#444"),
                Text(Left - 8, py + 4, yAxis.Format(t), "end", "tick"));
        }
        panel.Add(Text(Left + plotWidth / 2, PanelHeight - 14, xLabel, "middle", "axis-label"));
        var yLabel = Text(18, Top + plotHeight / 2, $"dev {metric} (hard)", "middle", "axis-label");
        yLabel.Add(new XAttribute("transform", $"rotate(-90 18 {Num(Top + plotHeight / 2)})"));
        panel.Add(yLabel);

        if (shown.Count > 1)
            panel.Add(new XElement(Ns + "polyline", new XAttribute("fill", "none"), new XAttribute("stroke", "#7a9cc6"),
                new XAttribute("points",
                    string.Join(' ', shown.Select(r => $"{Num(Px(x(r)))},{Num(Py(r.MetricHard))}")))));
        foreach (var r in shown)
        {
            double px = Px(x(r)), py = Py(r.MetricHard);
            panel.Add(r.IsDense
                ? new XElement(Ns + "path", new XAttribute("class", "point dense"), new XAttribute("fill", "#d62728"),
                    new XAttribute("d",
                        $"M{Num(px)},{Num(py - 7)} L{Num(px + 7)},{Num(py)} L{Num(px)},{Num(py + 7)} "
                        + $"L{Num(px - 7)},{Num(py)} Z"))
                : new XElement(Ns + "circle", new XAttribute("class", "point"), new XAttribute("fill", "#1f77b4"),
                    new XAttribute("data-lambda", SweepFiles.FormatLambda(r.Lambda!.Value)),
                    new XAttribute("cx", Num(px)), new XAttribute("cy", Num(py)), new XAttribute("r", "4.5")));
            // Labels go left of points in the right half so they stay inside the panel.
            bool leftSide = px > Left + plotWidth * 0.7;
            panel.Add(Text(leftSide ? px - 9 : px + 9, py - 7,
                r.IsDense ? "dense" : $"λ={SweepFiles.FormatLambda(r.Lambda!.Value)}",
                leftSide ? "end" : "start", "point-label"));
        }
        return panel;
    }

    static XElement Line(double x1, double y1, double x2, double y2, string stroke) => new(Ns + "line",
        new XAttribute("x1", Num(x1)), new XAttribute("y1", Num(y1)), new XAttribute("x2", Num(x2)),
        new XAttribute("y2", Num(y2)),
        new XAttribute("stroke", stroke));

    static XElement Text(double x, double y, string text, string anchor, string cssClass, bool bold = false)
    {
        var e = new XElement(Ns + "text", new XAttribute("class", cssClass), new XAttribute("x", Num(x)),
            new XAttribute("y", Num(y)),
            new XAttribute("text-anchor", anchor), text);
        if (bold) e.Add(new XAttribute("font-weight", "bold"));
        return e;
    }

    static string Num(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>An axis range padded to "nice" tick steps (1, 2 or 5 times a power of ten), about five ticks.</summary>
    internal sealed record Axis(double Min, double Max, double Step)
    {
        public static Axis For(IEnumerable<double> values)
        {
            var v = values.ToList();
            double lo = v.Count > 0 ? v.Min() : 0, hi = v.Count > 0 ? v.Max() : 1;
            if (hi - lo < 1e-9 * Math.Max(1, Math.Abs(hi)))
            {
                double pad = Math.Max(Math.Abs(hi) * 0.05, 0.01);
                lo -= pad; hi += pad;
            }
            double step = NiceStep((hi - lo) / 4);
            double min = Math.Floor(lo / step) * step, max = Math.Ceiling(hi / step) * step;
            // A point exactly on the frame is hard to see: leave half a step free on the sides it touches.
            if (lo - min < step * 0.25) min -= step / 2;
            if (max - hi < step * 0.25) max += step / 2;
            return new Axis(min, max, step);
        }

        static double NiceStep(double rough)
        {
            double power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
            double f = rough / power;
            return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
        }

        public IEnumerable<double> Ticks
        {
            get
            {
                double first = Math.Ceiling(Min / Step - 1e-9) * Step;
                for (int i = 0; first + i * Step <= Max + Step * 1e-9; i++) yield return first + i * Step;
            }
        }

        public string Format(double tick)
        {
            int decimals = Math.Max(0, (int)-Math.Floor(Math.Log10(Step) + 1e-9));
            return Math.Round(tick, decimals).ToString("F" + decimals, CultureInfo.InvariantCulture);
        }
    }
}
