using System.Runtime.InteropServices;

namespace EdgeBert.Cli;

/// <summary>Turns Ctrl+C (SIGINT) and SIGTERM into a cancellation request, so a long job saves its
/// resume state and exits instead of dying mid-write. A background job started with `nohup ... &amp;`
/// ignores SIGINT, hence SIGTERM too.</summary>
sealed class StopSignal : IDisposable
{
    readonly CancellationTokenSource _cancel = new();
    readonly PosixSignalRegistration[] _registrations;

    public StopSignal()
    {
        _registrations = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }.Select(signal =>
            PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // keep running until the job has saved its state
                _cancel.Cancel();
            })).ToArray();
    }

    public CancellationToken Token => _cancel.Token;
    public bool Requested => _cancel.IsCancellationRequested;

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _cancel.Dispose();
    }
}
