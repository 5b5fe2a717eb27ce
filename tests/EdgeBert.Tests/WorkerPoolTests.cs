using EdgeBert.Kernels;

namespace EdgeBert.Tests;

public class WorkerPoolTests
{
    sealed class Squares(int[] output) : IParallelWork
    {
        public void Execute(int part) => output[part] = part * part;
    }

    sealed class Counter : IParallelWork
    {
        public int Calls;
        public void Execute(int part) => Interlocked.Increment(ref Calls);
    }

    sealed class Failing : IParallelWork
    {
        public void Execute(int part) { if (part == 3) throw new InvalidOperationException("part 3"); }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    public void RunsEveryPartExactlyOnceEvenWithMorePartsThanThreads(int threads)
    {
        using var pool = new WorkerPool(threads);
        Assert.Equal(threads, pool.Threads);
        foreach (int parts in new[] { 1, 2, 3, 7, 64 })
        {
            var output = new int[parts];
            pool.Run(new Squares(output), parts);
            Assert.Equal(Enumerable.Range(0, parts).Select(p => p * p), output);
        }
    }

    [Fact]
    public async Task ThousandsOfRepeatedRunsDoNotDeadlock()
    {
        using var pool = new WorkerPool(3);
        var counter = new Counter();
        var run = Task.Run(() =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                pool.Run(counter, 1 + i % 5);
                if (i % 5_000 == 0) Thread.Sleep(2); // lets the workers fall asleep, then wakes them
            }
        });
        Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60))) == run, "worker pool deadlocked");
        await run;
        Assert.Equal(Enumerable.Range(0, 20_000).Sum(i => 1 + i % 5), counter.Calls);
    }

    [Fact]
    public void AnExceptionInAPartReachesTheCallerAndThePoolStaysUsable()
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<InvalidOperationException>(() => pool.Run(new Failing(), 8));
        Assert.Equal("part 3", e.Message);
        var output = new int[5];
        pool.Run(new Squares(output), 5);
        Assert.Equal([0, 1, 4, 9, 16], output);
    }

    [Fact]
    public void SingleRunsInlineAndRejectsNoThreads()
    {
        Assert.Equal(1, WorkerPool.Single.Threads);
        var output = new int[4];
        WorkerPool.Single.Run(new Squares(output), 4);
        Assert.Equal([0, 1, 4, 9], output);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerPool(0));
    }

    [Fact]
    public void GemmResultsAreIdenticalForOneTwoAndSevenThreads()
    {
        const int m = 67, n = 301, k = 129;
        float[] a = GemmTestSupport.Random(m * k, 11), w = GemmTestSupport.Random(n * k, 12),
            bias = GemmTestSupport.Random(n, 13);
        var packed = PackedWeight.FromLinear(w, n, k);
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 7 })
        {
            using var pool = new WorkerPool(threads);
            var viaSpans = new float[m * n];
            Gemm.Multiply(m, n, k, a, k, false, w, k, true, viaSpans, n, bias: bias, pool: pool);
            var viaPacked = new float[m * n];
            Gemm.Multiply(m, a, k, packed, viaPacked, n, bias: bias, epilogue: GemmEpilogue.None, pool: pool);
            first ??= viaSpans;
            Assert.Equal(first, viaSpans);
            Assert.Equal(first, viaPacked);
        }
    }
}
