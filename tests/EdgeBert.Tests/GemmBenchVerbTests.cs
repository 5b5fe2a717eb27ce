using System.Text.Json;
using EdgeBert.Cli;
using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class GemmBenchVerbTests
{

    [Theory]
    [InlineData("--m", "x", "--k", "4", "--n", "4")]
    [InlineData("--m", "0", "--k", "4", "--n", "4")]
    [InlineData("--m", "4", "--k", "-3", "--n", "4")]
    [InlineData("--m", "4", "--k", "4")]
    [InlineData("--m", "4", "--k", "4", "--n", "4", "--threads", "0")]
    [InlineData("--m", "4", "--k", "4", "--n", "4", "--isa", "sse9")]
    [InlineData("--m", "4", "--k", "4", "--n", "4", "--bogus", "1")]
    public void BadArgumentsExitTwoWithOneErrorLine(params string[] options)
    {
        var (code, output, error) = CliRun.Run(["bench", "gemm", .. options]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => line.StartsWith("error: "));
    }

    [Fact]
    public void UnsupportedIsaExitsTwo()
    {
        var missing = Enum.GetValues<Isa>().Where(i => !IsaSelector.IsSupported(i)).ToArray();
        if (missing.Length == 0) return; // this CPU runs every path
        var (code, _, error) = CliRun.Run("bench", "gemm", "--m", "4", "--k", "4", "--n", "4", "--isa",
            IsaSelector.Name(missing[0]));
        Assert.Equal(2, code);
        Assert.Contains("not supported", error);
    }

    [Fact]
    public void JsonReportsTheShapeAndAConsistentRate()
    {
        var (code, output, _) = CliRun.Run("bench", "gemm", "--m", "9", "--k", "17", "--n", "33", "--threads", "2",
            "--isa", "scalar", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.Equal(9, r.GetProperty("m").GetInt32());
        Assert.Equal(17, r.GetProperty("k").GetInt32());
        Assert.Equal(33, r.GetProperty("n").GetInt32());
        Assert.Equal(2, r.GetProperty("threads").GetInt32());
        Assert.Equal("scalar", r.GetProperty("isa").GetString());
        double ms = r.GetProperty("ms").GetDouble(), gflops = r.GetProperty("gflops").GetDouble();
        Assert.True(ms > 0);
        Assert.Equal(2.0 * 9 * 17 * 33 / (ms * 1e-3) / 1e9, gflops, 0.15 * gflops + 0.1);
    }
}
