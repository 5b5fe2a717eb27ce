using System.Diagnostics;
using System.Globalization;

namespace EdgeBert.Benchmarks;

/// <summary>Waits until the benchmark's processes have stopped using CPU time. ONNX Runtime's intra-op
/// threads spin for more than 20 ms after a pass, so a fixed pause either wastes time or lets one peer's
/// spinning threads take a core from the next peer (measurements: docs/peers.md).</summary>
static class ProcessIdle
{
    /// <summary>Length of one look at the CPU time.</summary>
    const int WindowMs = 5;
    /// <summary>Idle means under this share of one core over a window (sleeping threads and runtime
    /// housekeeping stay far below it; a spinning thread is near 1).</summary>
    const double IdleShare = 0.1;

    /// <summary>Sleeps at least minMs, then until a window in which the processes (this one and the
    /// given others) together used almost no CPU, or maxMs in all; returns the milliseconds waited.
    /// Without Linux's per-thread /proc/PID/task/TID/schedstat it only sleeps minMs.</summary>
    public static double Wait(int minMs, int maxMs, IReadOnlyList<int> otherProcesses)
    {
        long start = Stopwatch.GetTimestamp();
        if (minMs > 0) Thread.Sleep(minMs);
        int[] pids = [Environment.ProcessId, .. otherProcesses];
        if (!TryCpuNanoseconds(pids, out long before)) return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        while (Stopwatch.GetElapsedTime(start).TotalMilliseconds < maxMs)
        {
            long windowStart = Stopwatch.GetTimestamp();
            Thread.Sleep(WindowMs);
            if (!TryCpuNanoseconds(pids, out long after)) break;
            double wallNs = Stopwatch.GetElapsedTime(windowStart).TotalMilliseconds * 1e6;
            if (after - before < IdleShare * wallNs) break;
            before = after;
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>Time on CPU of every thread of the processes, in ns (the first field of each thread's
    /// schedstat; Process.TotalProcessorTime has 10 ms ticks on Linux, too coarse for a 5 ms window).</summary>
    static bool TryCpuNanoseconds(int[] pids, out long total)
    {
        total = 0;
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            foreach (int pid in pids)
                foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
                {
                    string text;
                    try { text = File.ReadAllText(Path.Combine(task, "schedstat")); }
                    // the thread ended
                    catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { continue; }
                    int space = text.IndexOf(' ');
                    total += long.Parse(text.AsSpan(0, space < 0 ? text.Length : space), CultureInfo.InvariantCulture);
                }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return false;
        }
    }
}
