namespace EdgeBert.Kernels;

/// <summary>A loop over [0, count) cut into fixed chunks of <c>grain</c> items and spread over a pool.
/// The chunks depend only on count and grain, never on the number of threads, so a body whose chunks
/// write disjoint outputs (or per-chunk partials summed afterwards in chunk order) gives bit-identical
/// results on any pool.</summary>
public static class ParallelChunks
{
    /// <summary>Items per chunk for streaming element-wise work: 64 KB of floats, enough to amortise
    /// a hand-off to another thread and small enough to stay in L2.</summary>
    public const int ElementGrain = 16384;

    /// <summary>Number of chunks <see cref="Run"/> cuts count items into.</summary>
    public static int Count(int count, int grain) => count <= 0 ? 0 : (count - 1) / grain + 1;

    /// <summary>Rows per chunk for row-wise work on rows of <paramref name="cols"/> values.</summary>
    public static int RowGrain(int cols) => Math.Max(1, ElementGrain / Math.Max(1, cols));

    /// <summary>Calls body(chunk, start, end) for every chunk, on the pool's threads when there is
    /// more than one chunk (inline, in chunk order, without a pool).</summary>
    public static void Run(WorkerPool? pool, int count, int grain, Action<int, int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(grain);
        int chunks = Count(count, grain);
        if (pool is null || pool.Threads == 1 || chunks <= 1)
        {
            for (int c = 0; c < chunks; c++) body(c, c * grain, Math.Min(count, (c + 1) * grain));
            return;
        }
        pool.Run(new Work(body, count, grain), chunks);
    }

    sealed class Work(Action<int, int, int> body, int count, int grain) : IParallelWork
    {
        public void Execute(int part) => body(part, part * grain, Math.Min(count, (part + 1) * grain));
    }
}
