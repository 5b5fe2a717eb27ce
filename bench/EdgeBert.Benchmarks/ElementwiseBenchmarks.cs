using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using EdgeBert.Kernels;

namespace EdgeBert.Benchmarks;

/// <summary>Element-wise kernels at BERT-base shapes (seq 128) on the best ISA path, each next to
/// the TensorPrimitives baseline where one exists. GB/s counts the bytes each call reads plus writes
/// once (<see cref="BytesMovedAttribute"/>).
/// `dotnet run -c Release --project bench/EdgeBert.Benchmarks -- --filter
/// '*ElementwiseBenchmarks*' --job short`</summary>
[Config(typeof(ThroughputConfig))]
public class ElementwiseBenchmarks
{
    const int SoftmaxRows = 12 * 128, SoftmaxCols = 128;
    const int Tokens = 128, Hidden = 768, Intermediate = 3072;

    float[] _scores = [], _hidden = [], _residual = [], _normalised = [], _gamma = [], _beta = [], _ffn = [],
        _activated = [];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        float[] Fill(int n, float scale) =>
            Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
        _scores = Fill(SoftmaxRows * SoftmaxCols, 4);
        _hidden = Fill(Tokens * Hidden, 2);
        _residual = Fill(Tokens * Hidden, 2);
        _normalised = new float[Tokens * Hidden];
        _gamma = Fill(Hidden, 1);
        _beta = Fill(Hidden, 1);
        _ffn = Fill(Tokens * Intermediate, 4);
        _activated = new float[Tokens * Intermediate];
    }

    // Softmax is benchmarked in place; exp(x - max) of a softmax output stays finite, so repeating is safe.
    [Benchmark, BenchmarkCategory("softmax"), BytesMoved(2L * SoftmaxRows * SoftmaxCols * 4)]
    public void Softmax_EdgeBert() => Softmax.Rows(_scores, SoftmaxRows, SoftmaxCols);

    [Benchmark(Baseline = true), BenchmarkCategory("softmax"), BytesMoved(2L * SoftmaxRows * SoftmaxCols * 4)]
    public void Softmax_TensorPrimitives()
    {
        for (int r = 0; r < SoftmaxRows; r++)
        {
            var row = _scores.AsSpan(r * SoftmaxCols, SoftmaxCols);
            TensorPrimitives.SoftMax(row, row);
        }
    }

    [Benchmark, BenchmarkCategory("layernorm"), BytesMoved(2L * Tokens * Hidden * 4)]
    public void LayerNorm_EdgeBert() => LayerNorm.Forward(_hidden, _normalised, Tokens, Hidden, _gamma, _beta, 1e-12f);

    /// <summary>LayerNorm composed from TensorPrimitives calls (it has no LayerNorm of its own).</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("layernorm"), BytesMoved(2L * Tokens * Hidden * 4)]
    public void LayerNorm_TensorPrimitives()
    {
        for (int r = 0; r < Tokens; r++)
        {
            var x = _hidden.AsSpan(r * Hidden, Hidden);
            var y = _normalised.AsSpan(r * Hidden, Hidden);
            float mean = TensorPrimitives.Sum(x) / Hidden;
            TensorPrimitives.Subtract(x, mean, y);
            float rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(y) / Hidden + 1e-12f);
            TensorPrimitives.Multiply(y, rstd, y);
            TensorPrimitives.FusedMultiplyAdd(y, _gamma, _beta, y);
        }
    }

    [Benchmark, BenchmarkCategory("gelu"), BytesMoved(2L * Tokens * Intermediate * 4)]
    public void Gelu_EdgeBert() => Activations.Gelu(_ffn, _activated);

    /// <summary>TensorPrimitives has no erf: the closest baseline is its tanh over the same tensor
    /// (the tanh-form GELU costs at least that).</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("gelu"), BytesMoved(2L * Tokens * Intermediate * 4)]
    public void Gelu_TensorPrimitivesTanhOnly() => TensorPrimitives.Tanh(_ffn, _activated);

    [Benchmark, BenchmarkCategory("tanh"), BytesMoved(2L * Tokens * Intermediate * 4)]
    public void Tanh_EdgeBert() => Activations.Tanh(_ffn, _activated);

    [Benchmark(Baseline = true), BenchmarkCategory("tanh"), BytesMoved(2L * Tokens * Intermediate * 4)]
    public void Tanh_TensorPrimitives() => TensorPrimitives.Tanh(_ffn, _activated);

    [Benchmark, BenchmarkCategory("add"), BytesMoved(3L * Tokens * Hidden * 4)]
    public void Add_EdgeBert() => Elementwise.Add(_hidden, _residual, _normalised);

    [Benchmark(Baseline = true), BenchmarkCategory("add"), BytesMoved(3L * Tokens * Hidden * 4)]
    public void Add_TensorPrimitives() => TensorPrimitives.Add(_hidden, _residual, _normalised);
}

/// <summary>Bytes one benchmark call reads plus writes, for the GB/s column.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BytesMovedAttribute(long bytes) : Attribute
{
    public long Bytes { get; } = bytes;
}

public sealed class ThroughputConfig : ManualConfig
{
    public ThroughputConfig()
    {
        AddColumn(new GigabytesPerSecondColumn());
        AddLogicalGroupRules(BenchmarkLogicalGroupRule.ByCategory);
    }
}

/// <summary>Bytes moved (from <see cref="BytesMovedAttribute"/>) divided by the mean time.</summary>
public sealed class GigabytesPerSecondColumn : IColumn
{
    public string Id => "GBps";
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Bytes read plus written per call / mean time";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var bytes = benchmarkCase.Descriptor.WorkloadMethod
            .GetCustomAttributes(typeof(BytesMovedAttribute), false).OfType<BytesMovedAttribute>().FirstOrDefault();
        var statistics = summary[benchmarkCase]?.ResultStatistics;
        if (bytes == null || statistics == null) return "-";
        return (bytes.Bytes / statistics.Mean).ToString("F1"); // bytes per ns = GB/s
    }
}
