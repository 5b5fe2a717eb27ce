using System.Globalization;

namespace EdgeBert.Model;

/// <summary>How a <see cref="TextClassifier"/> runs; every setting has a default that suits an app.</summary>
public sealed record ClassifierOptions : TextModelOptions
{
    /// <summary>The gates' keep threshold; default: the one the model was trained at.</summary>
    public float? GateThreshold { get; init; }
    /// <summary>Whether a gated model drops tokens (default); false runs it dense.</summary>
    public bool UseGates { get; init; } = true;
    /// <summary>Whether results list the word pieces that survive each layer's gates.</summary>
    public bool Explain { get; init; }

    internal override void Validate()
    {
        base.Validate();
        if (GateThreshold is { } t && !(t >= 0 && t <= 1))
            throw new ArgumentOutOfRangeException(nameof(GateThreshold), t, "the gate threshold lies in [0, 1]");
    }
}

/// <summary>What a <see cref="TextClassifier"/> says about one input.</summary>
public sealed class Classification
{
    /// <summary>The most probable label (id2label of config.json); for a regression model, the score written
    /// in invariant culture.</summary>
    public required string Label { get; init; }
    /// <summary>The index of <see cref="Label"/> among the model's labels, or -1 for a regression model.</summary>
    public required int LabelIndex { get; init; }
    /// <summary>The softmax probability of <see cref="Label"/>, or null for a regression model.</summary>
    public required double? Probability { get; init; }
    /// <summary>The softmax probability of every label, in the model's label order (empty for regression).</summary>
    public required IReadOnlyList<double> Probabilities { get; init; }
    /// <summary>The classifier's raw outputs, one per label (the score for regression).</summary>
    public required float[] Logits { get; init; }
    /// <summary>Tokens each layer's feed-forward block ran on: the input length unless gates dropped some.</summary>
    public required int[] KeptTokens { get; init; }
    /// <summary>The exact multiply-adds this input cost.</summary>
    public required long MultiplyAdds { get; init; }
    /// <summary>The multiply-adds it would cost without gates.</summary>
    public required long DenseMultiplyAdds { get; init; }
    /// <summary>The input's word pieces ([CLS] first), or null when the input was token ids.</summary>
    public string[]? Tokens { get; init; }
    /// <summary>With <see cref="ClassifierOptions.Explain"/> and text input: per layer, the word pieces that
    /// entered its feed-forward block, in order; otherwise null.</summary>
    public string[][]? SurvivingTokens { get; init; }
}

/// <summary>A text classifier over a fine-tuned BERT model (gated or not): load once, classify from any number
/// of threads at once. Each call gets its own buffers, and results do not depend on what runs beside them.
/// Dispose frees the native weight memory (after calls in progress return); later calls throw
/// ObjectDisposedException.</summary>
/// <example><code>
/// using var classifier = TextClassifier.Load("weights/edgebert-minilm-sst2");
/// var result = classifier.Classify("a gripping, beautifully made film");
/// Console.WriteLine($"{result.Label} {result.Probability:F4}");
/// </code></example>
public sealed class TextClassifier : IDisposable
{
    readonly EngineHost _host;
    readonly RunOptions _run;
    readonly int _batchSize;

    TextClassifier(EngineHost host, ClassifierOptions options)
    {
        _host = host;
        _run = new RunOptions(UseGates: options.UseGates, ReturnSurvivors: options.Explain);
        _batchSize = options.BatchSize;
    }

    /// <summary>Loads the model directory (config.json, model.safetensors, vocab.txt).</summary>
    public static TextClassifier Load(string directory, ClassifierOptions? options = null) =>
        Load(ModelSource.FromDirectory(directory), options);

    /// <summary>Loads a model from a directory, streams, bytes or embedded resources.</summary>
    /// <exception cref="InvalidDataException">A file is malformed, or the model has no classifier head.</exception>
    /// <exception cref="FileNotFoundException">A required file is missing.</exception>
    public static TextClassifier Load(ModelSource source, ClassifierOptions? options = null)
    {
        options ??= new ClassifierOptions();
        options.Validate();
        var host = new EngineHost(source, options.Threads,
            new EngineOptions { Precision = options.Precision, GateThreshold = options.GateThreshold },
            nameof(TextClassifier));
        if (host.Engine.NumLabels == 0)
        {
            host.Dispose();
            throw new InvalidDataException(
                $"{source.Name}: the checkpoint has no classifier (a bare BertModel cannot classify)");
        }
        return new TextClassifier(host, options);
    }

    /// <summary>The model's labels, in the order of <see cref="Classification.Probabilities"/>.</summary>
    public IReadOnlyList<string> Labels => _host.Checkpoint.Config.Labels;
    /// <summary>Whether the model predicts a score (one output) rather than a label.</summary>
    public bool IsRegression => _host.Checkpoint.Config.IsRegression;
    /// <summary>The longest input in tokens; longer texts are truncated to it.</summary>
    public int MaxLength => _host.Checkpoint.MaxSequenceLength;
    /// <summary>The loaded checkpoint, for what this class does not cover.</summary>
    public BertCheckpoint Checkpoint => _host.Checkpoint;
    /// <summary>The engine, for what this class does not cover (it is disposed with the classifier).</summary>
    public BertEngine Engine => _host.Engine;

    /// <summary>Tokenizes a text (and optional second text) as the model's tokenizer does, truncated to
    /// <see cref="MaxLength"/>.</summary>
    /// <exception cref="FileNotFoundException">The model has no vocab.txt.</exception>
    public TokenizedText Encode(string text, string? pair = null) => _host.Encode(text, pair, MaxLength);

    /// <summary>Classifies one text, or a pair of texts for pair tasks (entailment, paraphrase).</summary>
    public Classification Classify(string text, string? pair = null)
    {
        var encoded = Encode(text, pair);
        return Result(_host.Run([SequenceInput.From(encoded)], _run)[0], encoded.Tokens);
    }

    /// <summary>Classifies many texts in batches; <paramref name="pairs"/>, when given, holds each text's second
    /// text (null for none). Cancellation is checked between batches.</summary>
    public IReadOnlyList<Classification> Classify(IReadOnlyList<string> texts, IReadOnlyList<string?>? pairs = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count)
            throw new ArgumentException($"{pairs.Count} pairs for {texts.Count} texts", nameof(pairs));
        var encoded = new TokenizedText[texts.Count];
        for (int i = 0; i < encoded.Length; i++) encoded[i] = Encode(texts[i], pairs?[i]);
        var results = _host.RunAll(encoded.Select(SequenceInput.From).ToArray(), _run, _batchSize, cancellationToken);
        return [.. results.Select((r, i) => Result(r, encoded[i].Tokens))];
    }

    /// <summary>Classifies token id sequences (as <see cref="Encode"/> gives them) in batches. Sequences are not
    /// truncated; an id outside the vocabulary or a sequence longer than the model's positions is an
    /// ArgumentException naming the sequence.</summary>
    public IReadOnlyList<Classification> Classify(IReadOnlyList<SequenceInput> sequences,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var results = _host.RunAll(sequences, _run, _batchSize, cancellationToken);
        return [.. results.Select(r => Result(r, null))];
    }

    Classification Result(SequenceResult r, string[]? tokens)
    {
        var config = _host.Checkpoint.Config;
        var logits = r.Logits;
        string[][]? surviving = tokens is not null && r.Survivors is { } survivors
            ? [.. survivors.Select(layer => layer.Select(position => tokens[position]).ToArray())]
            : null;
        if (config.IsRegression)
            return new Classification
            {
                Label = logits[0].ToString("R", CultureInfo.InvariantCulture), LabelIndex = -1, Probability = null,
                Probabilities = [], Logits = logits, KeptTokens = r.Kept, MultiplyAdds = r.Flops,
                DenseMultiplyAdds = r.DenseFlops, Tokens = tokens, SurvivingTokens = surviving,
            };
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        // Shifted by the largest logit, so exp never overflows.
        var exps = logits.Select(z => Math.Exp((double)z - logits[best])).ToArray();
        double sum = exps.Sum();
        return new Classification
        {
            Label = config.Labels[best], LabelIndex = best, Probability = 1 / sum,
            Probabilities = [.. exps.Select(e => e / sum)], Logits = logits, KeptTokens = r.Kept,
            MultiplyAdds = r.Flops, DenseMultiplyAdds = r.DenseFlops, Tokens = tokens, SurvivingTokens = surviving,
        };
    }

    /// <summary>Frees the weights and threads (after calls in progress return). Calling it again does nothing.
    /// </summary>
    public void Dispose() => _host.Dispose();
}
