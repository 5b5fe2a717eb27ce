using System.Diagnostics;
using System.Globalization;
using EdgeBert.Kernels;
using EdgeBert.Model;

namespace EdgeBert.Benchmarks;

/// <summary>`peers`: EdgeBert against ONNX Runtime and PyTorch on the same weights and the same inputs,
/// in one process run, runs interleaved so that noise from other processes hits every peer alike.</summary>
static class PeersCommand
{
    public const string Usage = """
        peers (--shape base|mini|tiny | --model DIR) --seq S --batch B --threads T
              [--precision fp32|int8|both] [--rounds R] [--seconds X] [--warmup W] [--settle MS] [--opset N]
              [--python PATH] [--no-torch] [--keep]
          Saves the model (random weights of the shape, seed 1, or DIR) in the HF layout to a temporary
          directory, exports it to ONNX with tools/torch_peer.py, checks that every peer's logits and
          last hidden states agree with EdgeBert dense (relative error norm <= 1e-4), then runs the
          peers in turn (W warm-up runs each, then rounds in rotating order, at least R rounds and X
          seconds; defaults 2, 10, 10; before each pass it idles at least --settle MS, default 5, and
          then until its processes use no CPU, so one peer's spinning worker threads have gone to sleep
          before the next peer runs) and prints median and min ms per batch and the ratios to ONNX Runtime.
          The B sequences all have S tokens: EdgeBert packs sequences without padding, the peers pad to the
          longest, so only equal lengths compare like with like.
          --precision int8 or both (default fp32) also writes model.int8.onnx with
          tools/onnx_quantize_dynamic.py (weight MatMuls as com.microsoft DynamicQuantizeMatMul, int8
          weights with one scale per column) and adds the INT8 rows, checked against EdgeBert dense
          to a relative error norm <= 0.15, with ratios to ONNX Runtime int8 too; int8 alone leaves
          out the FP32 rows but EdgeBert dense (the reference).
        """;

    const double Tolerance = 1e-4;
    /// <summary>For int8 weights and dynamically quantized activations (ONNX Runtime int8 against EdgeBert
    /// FP32): above the quantization error, far below a wrong rewrite's; it does not judge INT8 accuracy
    /// (the errors behind it: docs/peers.md).</summary>
    const double Int8Tolerance = 0.15;
    /// <summary>Upper bound of the wait before a pass, should some thread never stop spinning.</summary>
    const int MaxSettleMs = 2000;

    public static int Run(string[] args)
    {
        if (args.Contains("--help"))
        {
            Console.WriteLine(Usage);
            return 0;
        }
        Options o;
        try { o = Options.Parse(args); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
            return 2;
        }
        try { return Run(o); }
        catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    static int Run(Options o)
    {
        var checkpoint = o.ModelDir is not null ? BertCheckpoint.Load(o.ModelDir)
            : new BertCheckpoint(BertConfig.ForShape(o.Shape!),
                WeightInit.Random(BertConfig.ForShape(o.Shape!), seed: 1));
        var config = checkpoint.Config;
        if (o.Seq > config.MaxPositionEmbeddings)
            throw new InvalidOperationException($"--seq {o.Seq} is longer than max_position_embeddings "
                + $"{config.MaxPositionEmbeddings}");

        string dir = Path.Combine(Path.GetTempPath(), $"edgebert-peers-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            string python = PeersPython.Interpreter(o.Python);
            checkpoint.Save(dir);
            string onnxPath = Path.Combine(dir, "model.onnx"), inputsPath = Path.Combine(dir, "inputs.json");
            var watch = Stopwatch.StartNew();
            PeersPython.Export(python, dir, onnxPath, o.Opset);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"exported {onnxPath} (opset {o.Opset}) in {watch.Elapsed.TotalSeconds:F1} s"));
            string? int8Path = null;
            if (o.Int8)
            {
                int8Path = Path.Combine(dir, "model.int8.onnx");
                watch.Restart();
                string summary = PeersPython.QuantizeDynamic(python, onnxPath, int8Path);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{summary} in {watch.Elapsed.TotalSeconds:F1} s"));
            }

            var batch = RandomBatch(config, o.Batch, o.Seq);
            TorchPeer.WriteInputs(inputsPath, batch);
            var engines = EdgeBertEngines(checkpoint, o);
            var engine = engines[0].Engine;
            var peers = new List<IPeer>();
            var baselines = new List<IPeer>();
            try
            {
                foreach (var (e, int8) in engines)
                {
                    var p = new EdgeBertPeer(e, batch, o.Threads, gated: false, int8);
                    peers.Add(p);
                    p.Capture();
                }
                foreach (var (e, int8) in engines.Where(e => e.Engine.HasGates && (e.Int8 || o.Fp32)))
                {
                    var gated = new EdgeBertPeer(e, batch, o.Threads, gated: true, int8);
                    peers.Add(gated);
                    gated.Capture();
                }
                foreach (var path in new[] { o.Fp32 ? onnxPath : null, int8Path }.OfType<string>())
                {
                    var ort = new OnnxRuntimePeer(path, batch, o.Threads, engine.NumLabels, config.HiddenSize,
                                                  int8: path == int8Path);
                    peers.Add(ort);
                    baselines.Add(ort);
                    ort.RunOnceMs();
                }
                if (o.Fp32 && !o.NoTorch) peers.Add(new TorchPeer(python, dir, inputsPath, o.Threads));

                if (!CheckAgreement(peers, (EdgeBertPeer)peers[0])) return 1;
                var times = Time(peers, o);
                PrintTable(peers, times, baselines, engine, batch, o);
            }
            finally
            {
                foreach (var p in peers) p.Dispose();
            }
            return 0;
        }
        finally
        {
            if (o.Keep) Console.WriteLine($"kept {dir}");
            else Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The EdgeBert engines of the run, one per precision: FP32 first, run dense as the reference of
    /// the agreement check (and gated when the model has gates), then INT8 when asked for.</summary>
    static List<(BertEngine Engine, bool Int8)> EdgeBertEngines(BertCheckpoint checkpoint, Options o)
    {
        var engines = new List<(BertEngine, bool)>
            { (BertEngine.Load(checkpoint, new EngineOptions { Precision = Precision.Fp32 }), false) };
        if (o.Int8) engines.Add((BertEngine.Load(checkpoint, new EngineOptions { Precision = Precision.Int8 }), true));
        return engines;
    }

    /// <summary>B sequences of S random ids; token types 0 for the first half and 1 for the rest, as a
    /// sentence pair would have them (when the model has two types).</summary>
    static SequenceInput[] RandomBatch(BertConfig config, int count, int seq)
    {
        var rng = new Random(2);
        var batch = new SequenceInput[count];
        for (int s = 0; s < count; s++)
        {
            var ids = new int[seq];
            var types = new int[seq];
            for (int i = 0; i < seq; i++)
            {
                ids[i] = rng.Next(config.VocabSize);
                types[i] = config.TypeVocabSize > 1 && i >= seq / 2 ? 1 : 0;
            }
            batch[s] = new SequenceInput(ids, types);
        }
        return batch;
    }

    /// <summary>Every dense peer's outputs against EdgeBert dense (FP32), int8 peers to the looser
    /// tolerance; the gated peer drops tokens, so its distance is shown but not checked.</summary>
    static bool CheckAgreement(List<IPeer> peers, EdgeBertPeer dense)
    {
        bool ok = true;
        foreach (var p in peers)
        {
            if (p == dense) continue;
            bool gated = p is EdgeBertPeer { Gated: true }, agrees = true;
            double tolerance = p.Int8 ? Int8Tolerance : Tolerance;
            var parts = new List<string>();
            if (p.Logits is not null && dense.Logits is not null)
            {
                double e = p.Logits.Length == dense.Logits.Length ? ErrorNorm.Relative(p.Logits, dense.Logits)
                    : double.PositiveInfinity;
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"logits {e:0.00E+00}"));
                agrees &= gated || e <= tolerance;
            }
            if (!gated)
            {
                double e = p.Hidden.Length == dense.Hidden.Length ? ErrorNorm.Relative(p.Hidden, dense.Hidden)
                    : double.PositiveInfinity;
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"last_hidden_state {e:0.00E+00}"));
                agrees &= e <= tolerance;
            }
            string bound = tolerance.ToString("0.#E+0", CultureInfo.InvariantCulture);
            string verdict = gated ? "(tokens dropped: not checked)"
                : agrees ? $"ok (<= {bound})" : $"FAILED: above {bound}";
            Console.WriteLine($"agreement {p.Name} vs EdgeBert dense: "
                + $"relative error norm {string.Join(", ", parts)} {verdict}");
            ok &= agrees;
        }
        if (!ok)
            Console.Error.WriteLine("error: the peers disagree with EdgeBert; "
                + "timings would compare different computations");
        return ok;
    }

    /// <summary>Per-peer pass times in ms, runs interleaved; also prints how long the settling took.</summary>
    static List<double>[] Time(List<IPeer> peers, Options o)
    {
        foreach (var p in peers)
            for (int i = 0; i < o.Warmup; i++) p.RunOnceMs();
        var times = peers.Select(_ => new List<double>()).ToArray();
        var settles = new List<double>();
        int[] others = peers.OfType<TorchPeer>().Select(p => p.ProcessId).ToArray();
        var watch = Stopwatch.StartNew();
        for (int round = 0; round < o.Rounds || watch.Elapsed.TotalSeconds < o.Seconds; round++)
            for (int k = 0; k < peers.Count; k++)
            {
                // Rotate the order so that no peer always runs right after the same neighbour.
                int i = (round + k) % peers.Count;
                // ONNX Runtime's and our pool's idle threads spin for a while after a pass; let them stop.
                settles.Add(ProcessIdle.Wait(o.SettleMs, MaxSettleMs, others));
                times[i].Add(peers[i].RunOnceMs());
            }
        settles.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"settling before a pass: median {settles[settles.Count / 2]:F0} ms, "
                + $"max {settles[^1]:F0} ms (until the processes used no CPU)"));
        return times;
    }

    /// <summary>The table, with the median and min ratios to each ONNX Runtime peer (FP32, int8) in the run.</summary>
    static void PrintTable(List<IPeer> peers, List<double>[] times, List<IPeer> baselines, BertEngine engine,
                           SequenceInput[] batch, Options o)
    {
        var inv = CultureInfo.InvariantCulture;
        var bases = baselines.Select(b => (Median: Median(times[peers.IndexOf(b)]), Min: times[peers.IndexOf(b)].Min(),
                                           Label: b.Int8 ? "ORT int8" : "ORT")).ToArray();
        long denseFlops = 0, gatedFlops = 0;
        foreach (var s in batch)
        {
            var kept = Enumerable.Range(0, engine.Config.NumHiddenLayers)
                .Select(j => engine.KeptAt(j, s.InputIds.Length, useGates: true)).ToArray();
            var (flops, dense) = engine.CountFlops(s.InputIds.Length, kept);
            denseFlops += dense;
            gatedFlops += flops;
        }
        string model = o.ModelDir ?? o.Shape!;
        Console.WriteLine(string.Create(inv,
            $"\npeers {model} seq={o.Seq} batch={o.Batch} threads={o.Threads} "
                + $"isa={IsaSelector.Name(IsaSelector.Default)} "
            + $"runs={times[0].Count} (sequences of equal length)"));
        string ratioHeads = string.Concat(bases.Select(b => $" median / {b.Label} | min / {b.Label} |"));
        Console.WriteLine($"| peer | median ms | min ms |{ratioHeads} GFLOP/s (median) |");
        Console.WriteLine($"|---|---:|---:|{string.Concat(bases.Select(_ => "---:|---:|"))}---:|");
        for (int i = 0; i < peers.Count; i++)
        {
            double median = Median(times[i]), min = times[i].Min();
            long flops = peers[i] is EdgeBertPeer { Gated: true } ? gatedFlops : denseFlops;
            string ratios = string.Concat(bases.Select(b =>
                string.Create(inv, $" {median / b.Median:F3} | {min / b.Min:F3} |")));
            Console.WriteLine(string.Create(inv,
                $"| {peers[i].Name} | {median:F2} | {min:F2} |{ratios} {2.0 * flops / median / 1e6:F1} |"));
        }
    }

    internal static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    sealed record Options(string? Shape, string? ModelDir, int Seq, int Batch, int Threads, int Rounds, double Seconds,
                          int Warmup, int SettleMs, int Opset, string? Python, bool NoTorch, bool Keep,
                          string Precision)
    {
        /// <summary>The FP32 rows: EdgeBert gated, ONNX Runtime, PyTorch (EdgeBert dense always runs).</summary>
        public bool Fp32 => Precision is "fp32" or "both";
        public bool Int8 => Precision is "int8" or "both";

        public static Options Parse(string[] args)
        {
            var values = new Dictionary<string, string>();
            var flags = new HashSet<string>();
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal))
                    throw new ArgumentException($"unexpected argument '{args[i]}'");
                string key = args[i][2..];
                if (key is "no-torch" or "keep") flags.Add(key);
                else if (i + 1 < args.Length) values[key] = args[++i];
                else throw new ArgumentException($"--{key} needs a value");
            }
            string[] known = ["shape", "model", "seq", "batch", "threads", "rounds", "seconds", "warmup", "settle",
                              "opset", "python", "precision"];
            foreach (var key in values.Keys)
                if (!known.Contains(key)) throw new ArgumentException($"unknown option --{key}");
            values.TryGetValue("shape", out var shape);
            values.TryGetValue("model", out var model);
            if ((shape is null) == (model is null))
                throw new ArgumentException("give exactly one of --shape base|mini|tiny or --model DIR");
            if (shape is not null and not ("base" or "mini" or "tiny"))
                throw new ArgumentException($"--shape must be base, mini or tiny, got '{shape}'");
            int Int(string key, int fallback, int min, int max)
            {
                if (!values.TryGetValue(key, out var text)) return fallback;
                if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min
                    || v > max)
                    throw new ArgumentException($"--{key} must be an integer in [{min}, {max}], got '{text}'");
                return v;
            }
            double seconds = 10;
            if (values.TryGetValue("seconds", out var s) &&
                (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) || seconds < 0))
                throw new ArgumentException($"--seconds must be a non-negative number, got '{s}'");
            values.TryGetValue("python", out var python);
            string precision = values.GetValueOrDefault("precision", "fp32");
            if (precision is not ("fp32" or "int8" or "both"))
                throw new ArgumentException($"--precision must be fp32, int8 or both, got '{precision}'");
            return new Options(shape, model, Int("seq", 128, 1, 1 << 16), Int("batch", 1, 1, 1024),
                Int("threads", 1, 1, 256),
                               Int("rounds", 10, 1, 1_000_000), seconds, Int("warmup", 2, 0, 1000),
                               Int("settle", 5, 0, 10_000), Int("opset", 14, 9, 17),
                               python, flags.Contains("no-torch"), flags.Contains("keep"), precision);
        }
    }
}
