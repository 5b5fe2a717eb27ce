using System.Diagnostics;
using System.Text;

namespace EdgeBert.Cli;

/// <summary>A one-line progress bar with rate and ETA on a terminal; when the stream is redirected it
/// prints a plain line every 10% (or 30 s) instead, so logs stay readable.</summary>
sealed class ProgressBar(TextWriter error)
{
    readonly bool _interactive = !Console.IsErrorRedirected;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    string _label = "";
    double _lastPrinted = -1, _lastPrintedAt;
    bool _visible;

    public void Report(string label, long done, long total, string details)
    {
        if (label != _label) { _label = label; _clock.Restart(); _lastPrinted = -1; }
        double fraction = total > 0 ? (double)done / total : 0;
        double elapsed = _clock.Elapsed.TotalSeconds;
        string eta = fraction > 0 ? Format(elapsed * (1 - fraction) / fraction) : "?";
        if (_interactive)
        {
            const int width = 24;
            int filled = (int)(fraction * width);
            var line = $"\r{label} [{new string('#', filled)}{new string('.', width - filled)}] {done}/{total} {details} ETA {eta}";
            error.Write(line.PadRight(Console.BufferWidth > 0 ? Math.Min(Console.BufferWidth - 1, 160) : 0));
            _visible = true;
        }
        else if (fraction - _lastPrinted >= 0.1 || elapsed - _lastPrintedAt >= 30 || done == total)
        {
            error.WriteLine($"{label}: {done}/{total} ({100 * fraction:F0}%) {details} ETA {eta}");
            _lastPrinted = fraction;
            _lastPrintedAt = elapsed;
        }
    }

    public void Clear()
    {
        if (!_visible) return;
        error.Write("\r" + new string(' ', Math.Max(0, Math.Min(Console.BufferWidth - 1, 160))) + "\r");
        _visible = false;
    }

    static string Format(double seconds) =>
        seconds >= 3600 ? $"{(int)(seconds / 3600)}h{(int)(seconds % 3600 / 60):D2}m" : $"{(int)(seconds / 60)}:{(int)(seconds % 60):D2}";
}

/// <summary>Clears the progress bar before each log line so the two do not interleave.</summary>
sealed class ClearingWriter(TextWriter inner, ProgressBar bar) : TextWriter
{
    public override Encoding Encoding => inner.Encoding;
    public override void Write(char value) => inner.Write(value);
    public override void WriteLine(string? value)
    {
        bar.Clear();
        inner.WriteLine(value);
        inner.Flush();
    }
}
