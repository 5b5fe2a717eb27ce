using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>The app-facing API (issue 20): TextClassifier and TextEmbedder give what the engine gives, from a
/// directory, bytes, streams of any kind; from many threads at once; and refuse use after Dispose.</summary>
public sealed class AppApiTests
{
    static string Gated => EngineFixtures.TinyBertGated;

    static IReadOnlyList<FixtureCase> TextCases => [.. EngineFixtures.GatedCases().Where(c => c.Text is not null)];

    static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var e = logits.Select(z => Math.Exp(z - max)).ToArray();
        return [.. e.Select(v => v / e.Sum())];
    }

    static void AssertSame(Classification expected, Classification actual)
    {
        Assert.Equal(expected.Label, actual.Label);
        Assert.Equal(expected.Logits, actual.Logits);
        Assert.Equal(expected.Probabilities, actual.Probabilities);
        Assert.Equal(expected.KeptTokens, actual.KeptTokens);
        Assert.Equal(expected.MultiplyAdds, actual.MultiplyAdds);
    }

    [Fact]
    public void ClassifyGivesTheEnginesLogitsLabelSoftmaxAndTheFixturesCosts()
    {
        var engine = EngineFixtures.Gated.Value;
        using var classifier = TextClassifier.Load(Gated);
        foreach (var c in TextCases)
        {
            var result = classifier.Classify(c.Text!, c.Pair);
            var expected = engine.Run([c.Input])[0];
            Assert.Equal(c.Ids, classifier.Encode(c.Text!, c.Pair).InputIds);
            Assert.Equal(expected.Logits, result.Logits);
            int best = Array.IndexOf(result.Logits, result.Logits.Max());
            Assert.Equal(engine.Config.Labels[best], result.Label);
            Assert.Equal(best, result.LabelIndex);
            var softmax = Softmax(expected.Logits);
            for (int i = 0; i < softmax.Length; i++) Assert.Equal(softmax[i], result.Probabilities[i], 12);
            Assert.Equal(softmax[best], result.Probability!.Value, 12);
            Assert.Equal(c.Gated!.Kept, result.KeptTokens);
            Assert.Equal(c.Gated.MultiplyAdds, result.MultiplyAdds);
            Assert.Equal(c.Dense.MultiplyAdds, result.DenseMultiplyAdds);
        }
    }

    [Fact]
    public void ExplainNamesTheWordPiecesTheGatesKeep()
    {
        using var classifier = TextClassifier.Load(Gated, new ClassifierOptions { Explain = true });
        var c = TextCases.First(c => c.Pair is null);
        var result = classifier.Classify(c.Text!);
        var tokens = classifier.Encode(c.Text!).Tokens;
        Assert.Equal(tokens, result.Tokens);
        Assert.Equal(c.Gated!.Survivors!.Select(s => s.Select(p => tokens[p]).ToArray()).ToArray(),
            result.SurvivingTokens);
        using var plain = TextClassifier.Load(Gated);
        Assert.Null(plain.Classify(c.Text!).SurvivingTokens);
    }

    [Fact]
    public void NoGatesAndAThresholdReachTheEngine()
    {
        var c = TextCases.First(c => c.Pair is null);
        using var dense = TextClassifier.Load(Gated, new ClassifierOptions { UseGates = false });
        var result = dense.Classify(c.Text!);
        Assert.Equal(c.Dense.MultiplyAdds, result.MultiplyAdds);
        Assert.Equal(EngineFixtures.Gated.Value.Run([c.Input], new RunOptions(UseGates: false))[0].Logits,
            result.Logits);
        using var strict = TextClassifier.Load(Gated, new ClassifierOptions { GateThreshold = 1f });
        Assert.Equal(1f, strict.Engine.Gates!.Threshold);
    }

    [Fact]
    public void TheBatchOverloadEqualsTheEngineOnTheSameBatches()
    {
        var engine = EngineFixtures.Gated.Value;
        using var classifier = TextClassifier.Load(Gated, new ClassifierOptions { BatchSize = 3 });
        var cases = TextCases;
        var results = classifier.Classify(cases.Select(c => c.Text!).ToArray(), cases.Select(c => c.Pair).ToArray());
        var byIds = classifier.Classify(cases.Select(c => c.Input).ToArray());
        for (int start = 0; start < cases.Count; start += 3)
        {
            var batch = cases.Skip(start).Take(3).ToArray();
            var expected = engine.Run(batch.Select(c => c.Input).ToArray());
            for (int i = 0; i < batch.Length; i++)
            {
                Assert.Equal(expected[i].Logits, results[start + i].Logits);
                Assert.Equal(expected[i].Kept, results[start + i].KeptTokens);
                AssertSame(results[start + i], byIds[start + i]);
            }
        }
    }

    [Fact]
    public void ABadSequenceIsNamedByItsIndexInTheWholeBatch()
    {
        using var classifier = TextClassifier.Load(Gated, new ClassifierOptions { BatchSize = 2 });
        var good = TextCases[0].Input;
        var e = Assert.Throws<ArgumentException>(() =>
            classifier.Classify([good, good, good, new SequenceInput([1, 1 << 30])]));
        Assert.StartsWith("sequence 3: input id 1073741824 is outside the vocabulary", e.Message);
    }

    [Fact]
    public void ACancelledBatchThrowsBeforeAnyWork()
    {
        using var classifier = TextClassifier.Load(Gated);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => classifier.Classify(["a", "b"], null, cancelled.Token));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void EightThreadsGetExactlyTheSingleThreadedResults(int threadsPerCall)
    {
        using var classifier = TextClassifier.Load(Gated, new ClassifierOptions { Threads = threadsPerCall });
        var cases = TextCases;
        var expected = cases.Select(c => classifier.Classify(c.Text!, c.Pair)).ToArray();
        var expectedBatch = classifier.Classify(cases.Select(c => c.Text!).ToArray(),
            cases.Select(c => c.Pair).ToArray());
        var failures = new List<string>();
        using var start = new Barrier(8);
        var workers = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            var random = new Random(t);
            try
            {
                for (int round = 0; round < 30; round++)
                {
                    int i = random.Next(cases.Count);
                    AssertSame(expected[i], classifier.Classify(cases[i].Text!, cases[i].Pair));
                    if (round % 10 != t % 10) continue;
                    var batch = classifier.Classify(cases.Select(c => c.Text!).ToArray(),
                        cases.Select(c => c.Pair).ToArray());
                    for (int j = 0; j < batch.Count; j++) AssertSame(expectedBatch[j], batch[j]);
                }
            }
            catch (Exception e)
            {
                lock (failures) failures.Add($"thread {t}: {e.Message}");
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        Assert.Empty(failures);
    }

    [Fact]
    public void UseAfterDisposeIsAnObjectDisposedException()
    {
        var classifier = TextClassifier.Load(Gated);
        classifier.Classify("a fine film");
        classifier.Dispose();
        classifier.Dispose();
        Assert.Throws<ObjectDisposedException>(() => classifier.Classify("a fine film"));
        Assert.Throws<ObjectDisposedException>(() => classifier.Classify(["a fine film"]));

        var engine = EngineFixtures.Load(Gated);
        var input = TextCases[0].Input;
        engine.Run([input]);
        engine.Dispose();
        Assert.Throws<ObjectDisposedException>(() => engine.Run([input]));

        var embedder = TextEmbedder.Load(ModelTestFiles.TinyBert);
        embedder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => embedder.Embed("a fine film"));
    }

    [Fact]
    public void ABareModelIsNoClassifier()
    {
        using var tmp = new ModelTestFiles.TempDir();
        ModelTestFiles.WriteModelDir(tmp.Path, ModelTestFiles.TinyTensors()
            .Where(t => !t.Name.StartsWith("classifier.", StringComparison.Ordinal)));
        var e = Assert.Throws<InvalidDataException>(() => TextClassifier.Load(tmp.Path));
        Assert.Contains("no classifier", e.Message);
    }

    static byte[] Bytes(string file) => File.ReadAllBytes(Path.Combine(Gated, file));

    static ModelSource GatedFromBytes(byte[]? weights = null, byte[]? config = null) =>
        ModelSource.FromBytes(config ?? Bytes("config.json"), weights ?? Bytes("model.safetensors"),
            Bytes("vocab.txt"), File.Exists(Path.Combine(Gated, "tokenizer_config.json"))
                ? Bytes("tokenizer_config.json") : null, name: "app-assets");

    [Fact]
    public void BytesAndUnseekableStreamsLoadTheModelTheDirectoryHolds()
    {
        using var fromDirectory = TextClassifier.Load(Gated);
        using var fromBytes = TextClassifier.Load(GatedFromBytes());
        using var fromStreams = TextClassifier.Load(ModelSource.FromStreams(
            new ForwardOnly(Bytes("config.json")), new ForwardOnly(Bytes("model.safetensors")),
            new ForwardOnly(Bytes("vocab.txt"))));
        foreach (var c in TextCases)
        {
            var expected = fromDirectory.Classify(c.Text!, c.Pair);
            AssertSame(expected, fromBytes.Classify(c.Text!, c.Pair));
            AssertSame(expected, fromStreams.Classify(c.Text!, c.Pair));
        }
    }

    [Fact]
    public void AnEmbeddedModelLoadsAsItsDirectory()
    {
        var assembly = typeof(AppApiTests).Assembly;
        Assert.True(ModelSource.HasResources(assembly, "gated/"));
        Assert.False(ModelSource.HasResources(assembly, "none/"));
        using var fromDirectory = TextClassifier.Load(Gated);
        using var embedded = TextClassifier.Load(ModelSource.FromResources(assembly, "gated/"));
        foreach (var c in TextCases)
            AssertSame(fromDirectory.Classify(c.Text!, c.Pair), embedded.Classify(c.Text!, c.Pair));
        var missing = Assert.Throws<FileNotFoundException>(() =>
            TextClassifier.Load(ModelSource.FromResources(assembly, "none/")));
        Assert.Equal("EdgeBert.Tests:none/config.json: not found", missing.Message);
    }

    [Fact]
    public void StreamsGetTheDirectorysChecksWithOneLineErrorsNamingTheFile()
    {
        var config = Assert.Throws<InvalidDataException>(() => TextClassifier.Load(ModelSource.FromStreams(
            new EndlessStream(), new MemoryStream(Bytes("model.safetensors")), name: "app-assets")));
        Assert.Equal("app-assets/config.json: larger than the 16 MB limit", config.Message);

        var vocab = Assert.Throws<InvalidDataException>(() => TextClassifier.Load(ModelSource.FromStreams(
            new MemoryStream(Bytes("config.json")), new MemoryStream(Bytes("model.safetensors")),
            new EndlessStream(), name: "app-assets")));
        Assert.Equal("app-assets/vocab.txt: larger than the 64 MB limit", vocab.Message);

        var empty = Assert.Throws<InvalidDataException>(() => TextClassifier.Load(GatedFromBytes(config: [])));
        Assert.Equal("app-assets/config.json: empty", empty.Message);

        var weights = Bytes("model.safetensors");
        var truncated = Assert.Throws<InvalidDataException>(() =>
            TextClassifier.Load(GatedFromBytes(weights: weights[..(weights.Length - 3)])));
        Assert.StartsWith("app-assets/model.safetensors: ", truncated.Message);
        Assert.DoesNotContain('\n', truncated.Message);

        var header = Assert.Throws<InvalidDataException>(() =>
            TextClassifier.Load(GatedFromBytes(weights: [.. BitConverter.GetBytes(1L << 40), .. new byte[64]])));
        Assert.StartsWith("app-assets/model.safetensors: header length field", header.Message);

        using var noVocab = TextClassifier.Load(ModelSource.FromBytes(Bytes("config.json"),
            Bytes("model.safetensors")));
        Assert.Throws<FileNotFoundException>(() => noVocab.Classify("a fine film"));
        Assert.Equal(EngineFixtures.Gated.Value.Run([TextCases[0].Input])[0].Logits,
            noVocab.Classify([TextCases[0].Input])[0].Logits);
    }

    [Fact]
    public void EmbeddingsArePooledHiddenStatesOfTheDenseEngine()
    {
        var engine = EngineFixtures.TinyF32.Value;
        using var embedder = TextEmbedder.Load(ModelTestFiles.TinyBert, new EmbedderOptions { MaxLength = 8 });
        using var cls = TextEmbedder.Load(ModelTestFiles.TinyBert, new EmbedderOptions { Pooling = Pooling.Cls });
        string[] texts = ["a fine film", "", "the quick brown fox jumps over the lazy dog again and again"];
        var batch = embedder.Embed(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var ids = embedder.Encode(texts[i]);
            Assert.True(ids.Length <= 8);
            var hidden = engine.Run([SequenceInput.From(ids)], new RunOptions(UseGates: false, ReturnHidden: true))[0]
                .Hidden!;
            var expected = SentenceEmbedding.Pool(hidden, engine.Hidden, Pooling.Mean, normalize: true);
            Assert.Equal(expected, embedder.Embed(texts[i]));
            Assert.Equal(expected.Length, embedder.Dimensions);
            Assert.Equal(1.0, Math.Sqrt(batch[i].Sum(v => (double)v * v)), 5);
            var clsIds = cls.Encode(texts[i]);
            var clsHidden = engine.Run([SequenceInput.From(clsIds)], new RunOptions(ReturnHidden: true))[0].Hidden!;
            Assert.Equal(SentenceEmbedding.Pool(clsHidden, engine.Hidden, Pooling.Cls, normalize: true),
                cls.Embed(texts[i]));
        }
    }

    [Fact]
    public void EmbeddingFromEightThreadsEqualsSingleThreaded()
    {
        using var embedder = TextEmbedder.Load(ModelTestFiles.TinyBert);
        var texts = TextCases.Select(c => c.Text!).ToArray();
        var expected = texts.Select(embedder.Embed).ToArray();
        var failures = 0;
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            for (int round = 0; round < 20; round++)
            {
                int i = (t * 7 + round) % texts.Length;
                if (!expected[i].AsSpan().SequenceEqual(embedder.Embed(texts[i]))) Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }

    /// <summary>A stream that can only be read, forwards, like a network or compressed stream.</summary>
    abstract class ReadOnlyForwardStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>The bytes of an array, read forwards only.</summary>
    sealed class ForwardOnly(byte[] bytes) : ReadOnlyForwardStream
    {
        readonly MemoryStream _inner = new(bytes);
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
    }

    /// <summary>Zeros without end, like /dev/zero.</summary>
    sealed class EndlessStream : ReadOnlyForwardStream
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            Array.Clear(buffer, offset, count);
            return count;
        }
    }
}
