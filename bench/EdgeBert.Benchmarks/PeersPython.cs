using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeBert.Benchmarks;

/// <summary>Runs tools/torch_peer.py and tools/onnx_quantize_dynamic.py with Debian's python3 (torch and onnx
/// come from Debian packages).</summary>
static class PeersPython
{
    /// <summary>Debian's interpreter first: a version-managed python3 earlier on PATH
    /// lacks Debian's packages.</summary>
    public static string Interpreter(string? requested) =>
        requested ?? (File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");

    const string TorchPeerScript = "torch_peer.py", QuantizeScript = "onnx_quantize_dynamic.py";

    /// <summary>tools/<paramref name="name"/> of the repository this program runs from (or the current
    /// directory is in).</summary>
    static string Script(string name)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tools", name);
                if (File.Exists(candidate)) return candidate;
            }
        throw new FileNotFoundException($"tools/{name} not found above the current directory or the program");
    }

    /// <summary>A run of tools/torch_peer.py.</summary>
    public static ProcessStartInfo StartInfo(string python, int threads, params string[] args) =>
        StartInfo(python, TorchPeerScript, threads, args);

    static ProcessStartInfo StartInfo(string python, string script, int threads, string[] args)
    {
        var info = new ProcessStartInfo(python) { UseShellExecute = false, RedirectStandardOutput = true,
            RedirectStandardError = true };
        info.ArgumentList.Add(Script(script));
        foreach (var a in args) info.ArgumentList.Add(a);
        // PyTorch's OpenMP threads and Debian's pthread OpenBLAS threads would otherwise spin against each
        // other on 2 cores (DESIGN.md 7); OpenBLAS also ignores torch.set_num_threads.
        string t = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["OMP_WAIT_POLICY"] = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "PASSIVE";
        info.Environment["OMP_NUM_THREADS"] = t;
        info.Environment["OPENBLAS_NUM_THREADS"] = t;
        // Under a hypervisor that reports a generic CPU model, Debian's OpenBLAS falls back to its slow
        // SSE3 (Prescott) kernels (docs/peers.md), so name the core.
        if (Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") is null)
        {
            if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) info.Environment["OPENBLAS_CORETYPE"] = "SkylakeX";
            else if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) info.Environment["OPENBLAS_CORETYPE"] = "Haswell";
        }
        return info;
    }

    /// <summary>Writes <paramref name="onnxPath"/> from the HF-layout model directory.</summary>
    public static void Export(string python, string modelDir, string onnxPath, int opset) =>
        RunToEnd(StartInfo(python, 1, "export", "--model", modelDir, "--out", onnxPath,
                           "--opset", opset.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                 onnxPath, "ONNX export");

    /// <summary>Writes <paramref name="int8Path"/>: the model at <paramref name="onnxPath"/> with its weight
    /// MatMuls and Gemms as com.microsoft DynamicQuantizeMatMul (int8 weights, one scale per column).
    /// Returns the script's one-line summary.</summary>
    public static string QuantizeDynamic(string python, string onnxPath, string int8Path) =>
        RunToEnd(StartInfo(python, QuantizeScript, 1, ["--in", onnxPath, "--out", int8Path]), int8Path,
                 "INT8 quantization");

    /// <summary>Runs a script to its end; throws with its stderr unless it succeeded and wrote
    /// <paramref name="product"/>.</summary>
    static string RunToEnd(ProcessStartInfo info, string product, string what)
    {
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(product))
            throw new InvalidOperationException($"{what} failed (exit {p.ExitCode}):\n{stderr.Result}");
        return stdout.Trim();
    }
}

/// <summary>The PyTorch peer: a long-lived torch_peer.py serve process that times its own forward passes
/// (torch.set_num_threads, inference_mode) when asked, so pipe overhead is not counted.</summary>
sealed class TorchPeer : IPeer
{
    readonly Process _process;

    /// <summary>The Python process, whose threads must be idle too before another peer runs.</summary>
    public int ProcessId => _process.Id;
    readonly StringBuilder _stderr = new();

    public TorchPeer(string python, string modelDir, string inputsPath, int threads)
    {
        var info = PeersPython.StartInfo(python, threads, "serve", "--model", modelDir, "--inputs", inputsPath,
                                         "--threads",
                                         threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
        info.RedirectStandardInput = true;
        _process = Process.Start(info)!;
        _process.ErrorDataReceived += (_, e) => { lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.BeginErrorReadLine();
        var first = ReadReply();
        int actualThreads = first["threads"]!.GetValue<int>();
        if (actualThreads != threads)
            throw new InvalidOperationException($"PyTorch runs {actualThreads} threads, not {threads}");
        Hidden = first["last_hidden_state"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        Logits = first["logits"]?.AsArray().Select(v => v!.GetValue<float>()).ToArray();
    }

    public string Name => "PyTorch";
    public bool Int8 => false;
    public float[]? Logits { get; }
    public float[] Hidden { get; }

    public double RunOnceMs()
    {
        _process.StandardInput.WriteLine("time 1");
        _process.StandardInput.Flush();
        return ReadReply()["ms"]!.AsArray()[0]!.GetValue<double>();
    }

    JsonNode ReadReply()
    {
        string? line = _process.StandardOutput.ReadLine();
        if (line is null)
        {
            _process.WaitForExit();
            lock (_stderr)
                throw new InvalidOperationException($"the PyTorch peer stopped (exit {_process.ExitCode}):\n{_stderr}");
        }
        return JsonNode.Parse(line) ?? throw new InvalidDataException($"PyTorch peer replied '{line}'");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.StandardInput.WriteLine("quit");
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000)) _process.Kill();
        }
        _process.Dispose();
    }

    /// <summary>The batch as torch_peer.py serve reads it.</summary>
    public static void WriteInputs(string path, IReadOnlyList<EdgeBert.Model.SequenceInput> batch) =>
        File.WriteAllText(path, JsonSerializer.Serialize(new
        {
            input_ids = batch.Select(s => s.InputIds),
            token_type_ids = batch.Select(s => s.TokenTypeIds ?? new int[s.InputIds.Length]),
        }));
}
