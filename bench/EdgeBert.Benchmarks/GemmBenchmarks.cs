using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using EdgeBert.Kernels;

namespace EdgeBert.Benchmarks;

/// <summary>One GEMM shape: C[M,N] = A[M,K] * W^T with W [N,K].</summary>
public sealed record GemmShape(int M, int K, int N)
{
    public double Flops => 2.0 * M * K * N;
    public override string ToString() => $"{M}x{K}x{N}";
}

/// <summary>The BERT-base products (M = tokens, K = in features, N = out features), on 1 and 2 threads,
/// through the forward-pass path (weight packed once) and the unpacked A * B^T path training uses.
/// `dotnet run -c Release --project bench/EdgeBert.Benchmarks -- --filter '*Gemm*'`</summary>
[Config(typeof(GflopsConfig))]
public class GemmBenchmarks
{
    public static IEnumerable<GemmShape> Shapes() =>
        [new(128, 768, 768), new(128, 768, 3072), new(128, 3072, 768), new(512, 768, 768)];

    [ParamsSource(nameof(Shapes))] public GemmShape Shape { get; set; } = new(128, 768, 768);
    [Params(1, 2)] public int Threads { get; set; }

    float[] _x = [], _weight = [], _y = [];
    PackedWeight? _packed;
    WorkerPool? _pool;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _x = Enumerable.Range(0, Shape.M * Shape.K).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _weight = Enumerable.Range(0, Shape.N * Shape.K).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        _y = new float[Shape.M * Shape.N];
        _packed = PackedWeight.FromLinear(_weight, Shape.N, Shape.K);
        _pool = new WorkerPool(Threads);
    }

    [GlobalCleanup]
    public void Cleanup() => _pool?.Dispose();

    [Benchmark(Baseline = true)]
    public void ForwardPackedWeight() => Gemm.Multiply(Shape.M, _x, Shape.K, _packed!, _y, Shape.N, pool: _pool);

    [Benchmark]
    public void UnpackedTransposedB() =>
        Gemm.Multiply(Shape.M, Shape.N, Shape.K, _x, Shape.K, false, _weight, Shape.K, true, _y, Shape.N, pool: _pool);
}

/// <summary>Adds a GFLOP/s column (2 M K N / mean time) to the default table.</summary>
public sealed class GflopsConfig : ManualConfig
{
    public GflopsConfig() => AddColumn(new GflopsColumn());
}

public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2 * M * K * N / mean time, in 10^9 floating-point operations per second";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "-";
        if (benchmarkCase.Parameters["Shape"] is not GemmShape shape) return "-";
        return (shape.Flops / stats.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
