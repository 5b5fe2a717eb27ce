using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace EdgeBert.Kernels;

/// <summary>One slice of a parallel job; <see cref="WorkerPool.Run"/> calls it once per part index.</summary>
public interface IParallelWork
{
    /// <summary>Does part <paramref name="part"/> of the work.</summary>
    void Execute(int part);
}

/// <summary>Persistent threads for cheap fork/join around sub-millisecond kernels. The calling
/// thread takes parts too. Idle threads spin for a bounded time and then block, because a pure
/// spin-wait collapses when another process wants the other core (DESIGN.md 7).</summary>
public sealed class WorkerPool : IDisposable
{
    /// <summary>How long an idle thread spins before it blocks (about 50 microseconds).</summary>
    static readonly long SpinTicks = Math.Max(1, Stopwatch.Frequency / 20_000);

    static readonly Lazy<WorkerPool> SingleInstance = new(() => new WorkerPool(1));

    /// <summary>A pool that runs every part inline on the calling thread.</summary>
    public static WorkerPool Single => SingleInstance.Value;

    readonly Thread[] _workers;
    readonly object _wakeGate = new();
    readonly object _doneGate = new();

    // High 32 bits: generation of the current job; low 32 bits: the next part index to hand out.
    // One word, so a thread that wakes late can never claim a part of a newer job by mistake.
    long _ticket;
    IParallelWork? _work;
    int _parts;
    int _finished;
    int _sleepers;
    int _callerWaiting;
    int _busy;
    Exception? _failure;
    volatile bool _disposed;

    /// <summary>Starts <paramref name="threads"/> - 1 worker threads; the caller is the last one.</summary>
    public WorkerPool(int threads)
    {
        if (threads < 1)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "a pool needs at least one thread");
        Threads = threads;
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"EdgeBert worker {i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads a job runs on, the caller included.</summary>
    public int Threads { get; }

    /// <summary>How many parts a job may cut its work into: several per thread, so that when another
    /// process takes a core the other threads claim its share; just one on a single thread, where
    /// cutting only adds overhead.</summary>
    public static int PartLimit(int threads, int partsPerThread) => threads <= 1 ? 1 : threads * partsPerThread;

    /// <summary>Calls work.Execute(part) for every part in [0, parts) and returns when all are done.
    /// A call made while the pool is already busy (nested or from another thread) runs inline.</summary>
    public void Run(IParallelWork work, int parts)
    {
        ArgumentNullException.ThrowIfNull(work);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (parts <= 0) return;
        if (_workers.Length == 0 || parts == 1 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < parts; i++) work.Execute(i);
            return;
        }
        try
        {
            // Close the previous job before touching its fields: a worker that still holds its ticket
            // must fail its claim rather than run a part of this job under the old job's count.
            long generation = (Volatile.Read(ref _ticket) >> 32) + 1;
            Interlocked.Exchange(ref _ticket, ((generation - 1) << 32) | int.MaxValue);
            _work = work;
            _parts = parts;
            _finished = 0;
            _failure = null;
            Interlocked.Exchange(ref _ticket, generation << 32);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_wakeGate) Monitor.PulseAll(_wakeGate);

            TakeParts(generation);
            WaitUntilFinished(parts);
            _work = null;
            if (_failure is { } failure) ExceptionDispatchInfo.Capture(failure).Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    void TakeParts(long generation)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            if (ticket >> 32 != generation) return;
            int part = (int)(ticket & 0xFFFF_FFFF);
            if (part >= Volatile.Read(ref _parts)) return;
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket) continue;
            // The part is claimed, so this job cannot have finished and _work still belongs to it.
            try { _work!.Execute(part); }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
            if (Interlocked.Increment(ref _finished) == _parts && Volatile.Read(ref _callerWaiting) != 0)
                lock (_doneGate) Monitor.PulseAll(_doneGate);
        }
    }

    void WaitUntilFinished(int parts)
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        while (Volatile.Read(ref _finished) < parts)
        {
            if (Stopwatch.GetTimestamp() < deadline) { Thread.SpinWait(8); continue; }
            Interlocked.Exchange(ref _callerWaiting, 1);
            lock (_doneGate)
                while (Volatile.Read(ref _finished) < parts) Monitor.Wait(_doneGate);
            Volatile.Write(ref _callerWaiting, 0);
        }
    }

    void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            long generation = WaitForNewJob(seen);
            if (_disposed) return;
            seen = generation;
            TakeParts(generation);
        }
    }

    long WaitForNewJob(long seen)
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        while (true)
        {
            long generation = Volatile.Read(ref _ticket) >> 32;
            if (generation != seen || _disposed) return generation;
            if (Stopwatch.GetTimestamp() < deadline) { Thread.SpinWait(8); continue; }
            lock (_wakeGate)
            {
                // Announce the sleep before the last look, so Run either sees a sleeper or we see its job.
                Interlocked.Increment(ref _sleepers);
                while (Volatile.Read(ref _ticket) >> 32 == seen && !_disposed) Monitor.Wait(_wakeGate);
                Interlocked.Decrement(ref _sleepers);
            }
        }
    }

    /// <summary>Stops the worker threads.</summary>
    public void Dispose()
    {
        // A one-thread pool owns nothing, and WorkerPool.Single must stay usable.
        if (_disposed || _workers.Length == 0) return;
        _disposed = true;
        lock (_wakeGate) Monitor.PulseAll(_wakeGate);
        foreach (var worker in _workers) worker.Join();
    }
}
