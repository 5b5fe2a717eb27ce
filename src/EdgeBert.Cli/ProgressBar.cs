using System.Diagnostics;
using System.Text;

namespace EdgeBert.Cli;

/// <summary>A one-line progress bar with rate-based ETA on stderr. On a terminal it redraws in place at
/// most ten times a second; when stderr is a file or pipe (background runs) it writes a line per 10%, at most
/// one per <see cref="PlainLineSeconds"/> besides the last, so a short job leaves a few lines in a log.
/// A total of 0 means not yet known: the line then shows the count without bar or ETA. Nothing is shown during
/// the first <paramref name="quietSeconds"/>, so work that finishes sooner prints nothing.</summary>
sealed class ProgressBar(TextWriter output, string label, long total, bool interactive, double quietSeconds = 0)
{
    /// <summary>The quiet start of the bars the commands show: only runs longer than this report progress.
    /// </summary>
    public const double CommandQuietSeconds = 2;
    public const double PlainLineSeconds = 5;

    const int Width = 30;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    long _lastDrawTicks = long.MinValue;
    int _lastDecile = -1;
    double _lastLineSeconds = double.NegativeInfinity;
    long _done;
    bool _completed, _visible, _shown;
    string _details = "";

    public string Label => label;
    public long Total => total;

    /// <summary>A bar on the command's stderr (<see cref="CliApp.Error"/>): drawn in place only on the
    /// process's stderr when that is a terminal, so logs and captured output get plain lines, never \r frames.
    /// </summary>
    public static ProgressBar OnStandardError(string label, long total)
    {
        var error = CliApp.Error;
        return new(error, label, total, ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected,
            CommandQuietSeconds);
    }

    /// <summary>Progress so far, with optional details (loss, rate) shown after the count.</summary>
    public void Report(long done, string? details = null)
    {
        if (_completed) return;
        _done = done;
        _details = details ?? _details;
        bool finished = total > 0 && done >= total;
        if (finished) _completed = true;
        if (!_shown && _clock.Elapsed.TotalSeconds < quietSeconds) return;
        _shown = true;
        if (interactive)
        {
            long now = _clock.ElapsedTicks;
            // long.MinValue means "draw now" (a fresh or cleared bar); the subtraction would overflow.
            if (!finished && _lastDrawTicks != long.MinValue && now - _lastDrawTicks < Stopwatch.Frequency / 10) return;
            _lastDrawTicks = now;
            output.Write("\r" + Line(done, finished) + (finished ? "\n" : ""));
            _visible = !finished;
        }
        else
        {
            int decile = total <= 0 ? -1 : (int)(10 * Math.Min(done, total) / total);
            double now = _clock.Elapsed.TotalSeconds;
            if (decile == _lastDecile || (!finished && now - _lastLineSeconds < PlainLineSeconds)) return;
            _lastDecile = decile;
            _lastLineSeconds = now;
            output.WriteLine(Line(done, finished));
        }
        output.Flush();
    }

    /// <summary>Ends the bar where it is (work that stopped short of the total).</summary>
    public void Complete()
    {
        if (_completed) return;
        _completed = true;
        if (!_shown) return;
        output.WriteLine((interactive ? "\r" : "") + Line(_done, true));
        output.Flush();
    }

    /// <summary>Wipes a half-drawn bar so a log line can take its place; the next Report redraws it.</summary>
    public void Clear()
    {
        if (!_visible) return;
        output.Write("\r" + new string(' ', Width + label.Length + _details.Length + 40) + "\r");
        _visible = false;
        _lastDrawTicks = long.MinValue;
    }

    string Line(long done, bool finished)
    {
        if (total <= 0)
            return $"{label} {done}{(_details.Length > 0 ? " " + _details : "")} "
                + $"{(finished ? $"done in {Time(_clock.Elapsed.TotalSeconds)}" : "")}   ";
        double fraction = finished || total <= 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        int filled = (int)(fraction * Width);
        double elapsed = _clock.Elapsed.TotalSeconds;
        string eta = fraction >= 1 ? $"done in {Time(elapsed)}"
                   : fraction > 0 ? $"ETA {Time(elapsed * (1 - fraction) / fraction)}" : "ETA -";
        string details = _details.Length > 0 ? " " + _details : "";
        return $"{label} [{new string('#', filled)}{new string('.', Width - filled)}] {fraction,4:P0} "
            + $"{done}/{total}{details} {eta}   ";
    }

    static string Time(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t:mm\\:ss}" : $"{t:m\\:ss}";
    }
}

/// <summary>The bar of the current phase of a long job: a new bar whenever the phase's label changes,
/// and log lines that clear the bar first so the two never interleave.</summary>
sealed class PhasedProgress(TextWriter log) : TextWriter
{
    ProgressBar? _bar;

    public override Encoding Encoding => log.Encoding;

    public void Report(string phase, long done, long total, string? details = null)
    {
        if (_bar is null || _bar.Label != phase || _bar.Total != total)
        {
            _bar?.Complete();
            _bar = ProgressBar.OnStandardError(phase, total);
        }
        _bar.Report(done, details);
    }

    public override void Write(char value) => log.Write(value);

    public override void WriteLine(string? value)
    {
        _bar?.Clear();
        log.WriteLine(value);
        log.Flush();
    }
}
