using BenchmarkDotNet.Attributes;
using EdgeBert.Kernels;

namespace EdgeBert.Benchmarks;

/// <summary>Attention of one sequence, all heads on one thread (BERT-base heads: 12 x 64), forward and
/// backward, on the best ISA path.
/// `dotnet run -c Release --project bench/EdgeBert.Benchmarks -- --filter
/// '*AttentionBenchmarks*' --job short`</summary>
public class AttentionBenchmarks
{
    const int Heads = 12, HeadDim = 64, Hidden = Heads * HeadDim, Ld = 3 * Hidden;

    [Params(32, 128, 512)]
    public int N { get; set; }

    float[] _qkv = [], _context = [], _probs = [], _dContext = [], _dQkv = [];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        float[] Fill(int length) => Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1))
            .ToArray();
        _qkv = Fill(N * Ld);
        _dContext = Fill(N * Hidden);
        _context = new float[N * Hidden];
        _probs = new float[Heads * N * N];
        _dQkv = new float[N * Ld];
        Forward();
    }

    [Benchmark]
    public void Forward() => Attention.Forward(_qkv, _qkv.AsSpan(Hidden), _qkv.AsSpan(2 * Hidden), Ld, N, Heads,
        HeadDim, _context, Hidden, _probs);

    [Benchmark]
    public void Backward() => Attention.Backward(_qkv, _qkv.AsSpan(Hidden), _qkv.AsSpan(2 * Hidden), Ld, N, Heads,
        HeadDim, _probs, _dContext, Hidden, _dQkv, _dQkv.AsSpan(Hidden), _dQkv.AsSpan(2 * Hidden));
}
