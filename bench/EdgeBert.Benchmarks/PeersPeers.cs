using System.Diagnostics;
using EdgeBert.Kernels;
using EdgeBert.Model;
using Microsoft.ML.OnnxRuntime;
using EngineRunOptions = EdgeBert.Model.RunOptions;

namespace EdgeBert.Benchmarks;

/// <summary>One contender of the peers run: it runs the same batch once per call and says how long the
/// forward pass took. Outputs are flattened [batch, labels] logits and [batch, seq, hidden] states.</summary>
interface IPeer : IDisposable
{
    string Name { get; }
    /// <summary>Whether its weights are int8: its outputs are checked against a looser tolerance.</summary>
    bool Int8 { get; }
    double RunOnceMs();
    float[]? Logits { get; }
    float[] Hidden { get; }
}

/// <summary>One engine of a precision (<see cref="PeersCommand.EdgeBertEngines"/>), run dense or gated.</summary>
sealed class EdgeBertPeer(BertEngine engine, SequenceInput[] batch, int threads, bool gated, bool int8 = false) : IPeer
{
    readonly WorkerPool _pool = new(threads);
    readonly InferenceWorkspace _workspace = new();
    readonly EngineRunOptions _options = new(UseGates: gated);

    public string Name => $"EdgeBert {(int8 ? "int8 " : "")}{(gated ? "gated" : "dense")}";
    public bool Int8 => int8;
    public bool Gated => gated;
    public float[]? Logits { get; private set; }
    public float[] Hidden { get; private set; } = [];

    /// <summary>One untimed pass that keeps the outputs (hidden states only make sense dense: gated
    /// layers drop rows).</summary>
    public void Capture()
    {
        var results = engine.Run(batch, _workspace, _options with { ReturnHidden = !gated }, _pool);
        Logits = engine.NumLabels > 0 ? results.SelectMany(r => r.Logits).ToArray() : null;
        if (!gated) Hidden = results.SelectMany(r => r.Hidden!).ToArray();
    }

    public double RunOnceMs()
    {
        long start = Stopwatch.GetTimestamp();
        engine.Run(batch, _workspace, _options, _pool);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    public void Dispose() => _pool.Dispose();
}

/// <summary>ONNX Runtime from C#: all graph optimisations, intra-op threads = threads, one inter-op
/// thread, sequential execution, outputs written into preallocated tensors. <paramref name="int8"/>: the
/// model is the DynamicQuantizeMatMul rewrite of tools/onnx_quantize_dynamic.py.</summary>
sealed class OnnxRuntimePeer : IPeer
{
    /// <summary>How every peer runs ONNX Runtime: all graph optimisations, T intra-op threads, sequential.</summary>
    internal static SessionOptions SessionOptionsFor(int threads) => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

    readonly InferenceSession _session;
    readonly Microsoft.ML.OnnxRuntime.RunOptions _runOptions = new();
    readonly string[] _inputNames = ["input_ids", "attention_mask", "token_type_ids"];
    readonly OrtValue[] _inputs;
    readonly string[] _outputNames;
    readonly OrtValue[] _outputs;
    readonly float[]? _logits;
    readonly float[] _hidden;

    public OnnxRuntimePeer(string onnxPath, SequenceInput[] batch, int threads, int labels, int hidden,
                           bool int8 = false)
    {
        Int8 = int8;
        using var options = SessionOptionsFor(threads);
        _session = new InferenceSession(onnxPath, options);
        int count = batch.Length, seq = batch[0].InputIds.Length;
        long[] shape = [count, seq];
        var ids = batch.SelectMany(s => s.InputIds.Select(i => (long)i)).ToArray();
        var types = batch.SelectMany(s => (s.TokenTypeIds ?? new int[seq]).Select(i => (long)i)).ToArray();
        var mask = Enumerable.Repeat(1L, ids.Length).ToArray();
        _inputs = [OrtValue.CreateTensorValueFromMemory(ids, shape), OrtValue.CreateTensorValueFromMemory(mask, shape),
                   OrtValue.CreateTensorValueFromMemory(types, shape)];
        _hidden = new float[count * seq * hidden];
        var hiddenValue = OrtValue.CreateTensorValueFromMemory(_hidden, [count, seq, hidden]);
        if (labels > 0)
        {
            _logits = new float[count * labels];
            _outputNames = ["logits", "last_hidden_state"];
            _outputs = [OrtValue.CreateTensorValueFromMemory(_logits, [count, labels]), hiddenValue];
        }
        else
        {
            _outputNames = ["last_hidden_state"];
            _outputs = [hiddenValue];
        }
    }

    public string Name => Int8 ? "ONNX Runtime int8" : "ONNX Runtime";
    public bool Int8 { get; }
    public float[]? Logits => _logits;
    public float[] Hidden => _hidden;

    public double RunOnceMs()
    {
        long start = Stopwatch.GetTimestamp();
        _session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    public void Dispose()
    {
        foreach (var v in _inputs.Concat(_outputs)) v.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }
}
