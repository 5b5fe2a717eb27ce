using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>A loaded model for the app-facing classes: the checkpoint, its engine, one worker pool and a stack of
/// idle workspaces, so concurrent calls each run with their own buffers and a steady caller allocates none.
/// The pool is shared safely: a call that finds it busy runs its parts on its own thread.</summary>
internal sealed class EngineHost : IDisposable
{
    readonly Stack<InferenceWorkspace> _idle = new();
    readonly WorkerPool _pool;
    readonly string _owner;
    int _running;
    bool _disposed;

    public BertCheckpoint Checkpoint { get; }
    public BertEngine Engine { get; }

    /// <param name="source">Where the model's files come from.</param>
    /// <param name="threads">Threads of the shared worker pool.</param>
    /// <param name="options">Precision and gate threshold of the engine.</param>
    /// <param name="owner">The public class, for ObjectDisposedException's message.</param>
    public EngineHost(ModelSource source, int threads, EngineOptions options, string owner)
    {
        _owner = owner;
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Checkpoint = BertCheckpoint.Load(source);
        Engine = BertEngine.Load(Checkpoint, options);
        _pool = threads == 1 ? WorkerPool.Single : new WorkerPool(threads);
    }

    /// <summary>The model's tokenizer on a text (and optional second text), truncated to
    /// <paramref name="maxLength"/>.</summary>
    public TokenizedText Encode(string text, string? pair, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        ThrowIfDisposed();
        return Checkpoint.RequireTokenizer().Encode(text, pair, maxLength);
    }

    /// <summary>Runs one batch with a workspace no other call is using.</summary>
    public SequenceResult[] Run(IReadOnlyList<SequenceInput> batch, RunOptions options)
    {
        InferenceWorkspace workspace;
        lock (_idle)
        {
            ThrowIfDisposed();
            workspace = _idle.Count > 0 ? _idle.Pop() : new InferenceWorkspace();
            _running++;
        }
        try
        {
            return Engine.Run(batch, workspace, options, _pool);
        }
        finally
        {
            bool last;
            lock (_idle)
            {
                if (!_disposed) _idle.Push(workspace);
                last = --_running == 0 && _disposed;
            }
            if (last) Free();
        }
    }

    /// <summary>Batches of <paramref name="batchSize"/>, checking <paramref name="cancellation"/> before each.
    /// </summary>
    public List<SequenceResult> RunAll(IReadOnlyList<SequenceInput> sequences, RunOptions options, int batchSize,
        CancellationToken cancellation)
    {
        // Checked before any work, so an error names the sequence's index in the whole list, not in its batch.
        for (int i = 0; i < sequences.Count; i++)
        {
            try { Engine.Validate(sequences[i]); }
            catch (ArgumentException e) { throw new ArgumentException($"sequence {i}: {e.Message}", e); }
        }
        var results = new List<SequenceResult>(sequences.Count);
        for (int start = 0; start < sequences.Count; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var batch = new SequenceInput[Math.Min(batchSize, sequences.Count - start)];
            for (int i = 0; i < batch.Length; i++) batch[i] = sequences[start + i];
            results.AddRange(Run(batch, options));
        }
        return results;
    }

    public void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed)) throw new ObjectDisposedException(_owner);
    }

    /// <summary>Frees the weights and threads now, or when the last call in progress returns.</summary>
    public void Dispose()
    {
        bool idle;
        lock (_idle)
        {
            if (_disposed) return;
            _disposed = true;
            _idle.Clear();
            idle = _running == 0;
        }
        if (idle) Free();
    }

    void Free()
    {
        if (_pool != WorkerPool.Single) _pool.Dispose();
        Engine.Dispose();
    }
}
