namespace EdgeBert.Model;

/// <summary>How a <see cref="TextEmbedder"/> runs; every setting has a default that suits an app.</summary>
public sealed record EmbedderOptions : TextModelOptions
{
    /// <summary>Mean or [CLS] pooling; default: the pooling stored in config.json at import, else mean.</summary>
    public Pooling? Pooling { get; init; }
    /// <summary>Whether embeddings are divided by their L2 norm (default), as sentence-transformers does.</summary>
    public bool Normalize { get; init; } = true;
    /// <summary>Texts are truncated to this many tokens; default (and upper bound): the model's maximum.</summary>
    public int? MaxLength { get; init; }

    internal override void Validate()
    {
        base.Validate();
        // [CLS] and [SEP] take two tokens.
        if (MaxLength is { } m) ArgumentOutOfRangeException.ThrowIfLessThan(m, 2, nameof(MaxLength));
    }
}

/// <summary>Sentence embeddings as sentence-transformers computes them (e.g. all-MiniLM-L6-v2 imported with
/// `edgebert import`): the mean of the last hidden states over the tokens, or the [CLS] state, L2-normalised.
/// Thread-safe: load once, embed from any number of threads at once. Dispose frees the native weight memory (after
/// calls in progress return); later calls throw ObjectDisposedException.</summary>
/// <example><code>
/// using var embedder = TextEmbedder.Load("models/minilm");
/// float[] query = embedder.Embed("A man is eating food.");
/// </code></example>
public sealed class TextEmbedder : IDisposable
{
    // Every token counts in the mean, so a gated model runs dense here.
    static readonly RunOptions Run = new(UseGates: false, ReturnHidden: true);
    readonly EngineHost _host;
    readonly bool _normalize;
    readonly int _batchSize;

    TextEmbedder(EngineHost host, EmbedderOptions options)
    {
        _host = host;
        Pooling = options.Pooling ?? SentenceEmbedding.DefaultPooling(host.Checkpoint.Config);
        _normalize = options.Normalize;
        _batchSize = options.BatchSize;
        MaxLength = Math.Min(options.MaxLength ?? int.MaxValue, host.Checkpoint.MaxSequenceLength);
    }

    /// <summary>Loads the model directory (config.json, model.safetensors, vocab.txt).</summary>
    public static TextEmbedder Load(string directory, EmbedderOptions? options = null) =>
        Load(ModelSource.FromDirectory(directory), options);

    /// <summary>Loads a model from a directory, streams, bytes or embedded resources.</summary>
    /// <exception cref="InvalidDataException">A file is malformed.</exception>
    /// <exception cref="FileNotFoundException">A required file is missing.</exception>
    public static TextEmbedder Load(ModelSource source, EmbedderOptions? options = null)
    {
        options ??= new EmbedderOptions();
        options.Validate();
        var host = new EngineHost(source, options.Threads, new EngineOptions { Precision = options.Precision },
            nameof(TextEmbedder));
        try
        {
            // A bad pooling key in config.json fails here, at load, not at the first text.
            return new TextEmbedder(host, options);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>The length of every embedding (the model's hidden size).</summary>
    public int Dimensions => _host.Engine.Hidden;
    /// <summary>How hidden states become one vector.</summary>
    public Pooling Pooling { get; }
    /// <summary>Texts are truncated to this many tokens.</summary>
    public int MaxLength { get; }
    /// <summary>The loaded checkpoint, for what this class does not cover.</summary>
    public BertCheckpoint Checkpoint => _host.Checkpoint;
    /// <summary>The engine, for what this class does not cover (it is disposed with the embedder).</summary>
    public BertEngine Engine => _host.Engine;

    /// <summary>Tokenizes a text (and optional second text), truncated to <see cref="MaxLength"/>.</summary>
    /// <exception cref="FileNotFoundException">The model has no vocab.txt.</exception>
    public TokenizedText Encode(string text, string? pair = null) => _host.Encode(text, pair, MaxLength);

    /// <summary>The embedding of one text (an empty text too: it is [CLS] [SEP]).</summary>
    public float[] Embed(string text) => Embed([SequenceInput.From(Encode(text))])[0];

    /// <summary>The embeddings of many texts, in batches; cancellation is checked between batches.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return Embed([.. texts.Select(t => SequenceInput.From(Encode(t)))], cancellationToken);
    }

    /// <summary>The embeddings of token id sequences (not truncated), in batches.</summary>
    public float[][] Embed(IReadOnlyList<SequenceInput> sequences, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        int hidden = _host.Engine.Hidden;
        return [.. _host.RunAll(sequences, Run, _batchSize, cancellationToken)
            .Select(r => SentenceEmbedding.Pool(r.Hidden, hidden, Pooling, _normalize))];
    }

    /// <summary>Frees the weights and threads (after calls in progress return). Calling it again does nothing.
    /// </summary>
    public void Dispose() => _host.Dispose();
}
