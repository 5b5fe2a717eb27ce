using System.Text.Json;
using EdgeBert.Cli;

namespace EdgeBert.Tests;

public class EncoderBenchVerbTests
{

    [Fact]
    public void SeveralThreadCountsGiveOneLineEachWithTheSpeedUpOverTheFirst()
    {
        var (code, output, error) = CliRun.Run("bench", "encoder", "--shape", "tiny", "--seq", "12", "--batch", "3",
            "--threads", "1,2", "--seconds", "0.05", "--json");
        Assert.True(code == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal(1, first.RootElement.GetProperty("threads").GetInt32());
        Assert.Equal(2, second.RootElement.GetProperty("threads").GetInt32());
        Assert.Equal(1.0, first.RootElement.GetProperty("speedup").GetDouble());
        double ms1 = first.RootElement.GetProperty("ms").GetDouble(),
            ms2 = second.RootElement.GetProperty("ms").GetDouble();
        Assert.Equal(ms1 / ms2, second.RootElement.GetProperty("speedup").GetDouble(), 0.01 * ms1 / ms2 + 0.002);
    }

    [Theory]
    [InlineData("1,x")]
    [InlineData("0")]
    [InlineData("1,,2")]
    public void BadThreadListsExitTwoWithTheEncoderUsage(string threads)
    {
        var (code, output, error) = CliRun.Run("bench", "encoder", "--shape", "tiny", "--seq", "8", "--batch", "1",
            "--threads", threads);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith("error: --threads", error);
        Assert.Contains("usage: edgebert bench encoder", error);
    }
}
