using EdgeBert.Cli;
using Xunit;

namespace EdgeBert.Tests;

public class ProgressBarTests
{
    [Fact]
    public void A_known_total_shows_percent_and_ends_done()
    {
        var output = new StringWriter();
        var bar = new ProgressBar(output, "work", 10, interactive: false);
        bar.Report(5, "loss 1.0");
        bar.Report(10);
        string text = output.ToString();
        Assert.Contains("50 % 5/10 loss 1.0", text.Replace("\u00a0", " "));
        Assert.Contains("10/10", text);
        Assert.Contains("done in", text);
    }

    [Fact]
    public void An_unknown_total_shows_the_count_without_percent_or_done()
    {
        var output = new StringWriter();
        var bar = new ProgressBar(output, "pretraining (measuring the step time)", 0, interactive: true);
        bar.Report(7, "loss 5.8");
        string text = output.ToString();
        Assert.Contains("pretraining (measuring the step time) 7 loss 5.8", text);
        Assert.DoesNotContain("%", text);
        Assert.DoesNotContain("done", text);
        Assert.DoesNotContain("ETA", text);
    }

    [Fact]
    public void On_a_terminal_the_first_report_draws_at_once()
    {
        var output = new StringWriter();
        var bar = new ProgressBar(output, "work", 100, interactive: true);
        bar.Report(1);
        Assert.Contains("1/100", output.ToString());
        bar.Report(100);
        Assert.Contains("100/100", output.ToString());
    }

    [Fact]
    public void Redirected_output_gets_plain_lines_and_never_a_carriage_return()
    {
        var output = new StringWriter();
        var bar = new ProgressBar(output, "work", 100, interactive: false);
        for (int i = 1; i <= 60; i++) bar.Report(i, $"loss {i}");
        bar.Clear();
        bar.Complete();
        string text = output.ToString();
        Assert.DoesNotContain("\r", text);
        // Within seconds: the first line, and the closing one.
        Assert.Equal(2, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void Work_done_within_the_quiet_start_prints_nothing()
    {
        foreach (bool interactive in new[] { true, false })
        {
            var output = new StringWriter();
            var bar = new ProgressBar(output, "work", 10, interactive, quietSeconds: 3600);
            bar.Report(5);
            bar.Report(10);
            bar.Complete();
            Assert.Equal("", output.ToString());
        }
    }
}
