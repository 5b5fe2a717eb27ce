using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using EdgeBert.Model;
using Xunit.Abstractions;

namespace EdgeBert.Tests;

/// <summary>Model directories made by an attacker from the tiny fixture: each must fail with one clean
/// InvalidDataException naming the file (and the tensor or key), quickly and in bounded memory.</summary>
public class HostileModelTests(ITestOutputHelper output)
{
    const string Config = "config.json", Weights = "model.safetensors", Vocab = "vocab.txt",
                 TokConfig = "tokenizer_config.json";
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    const long MaxAllocated = 200L << 20;

    /// <summary>A hostile case: how to spoil a copy of the tiny fixture, the file the error must name and the
    /// tensor or key it must name (null when there is none).</summary>
    public sealed record Case(string Name, Action<string> Spoil, string File, string? Key)
    {
        public override string ToString() => Name;
    }

    static readonly string FirstTensor = "bert.embeddings.LayerNorm.bias";

    static Case ConfigValue(string key, long value, string file, string? named) =>
        new($"{key}={value}", dir => EditConfig(dir, c => c[key] = value), file, named);

    public static readonly Case[] Cases =
    [
        // Config values that used to size allocations before any stored shape was looked at.
        ConfigValue("hidden_size", 2147483644, Weights, "bert.embeddings.word_embeddings.weight"),
        ConfigValue("hidden_size", 65536, Weights, "bert.embeddings.word_embeddings.weight"),
        ConfigValue("vocab_size", 10_000_000, Weights, "bert.embeddings.word_embeddings.weight"),
        ConfigValue("num_hidden_layers", 1_000_000, Weights, "bert.encoder.layer.2.attention.self.query.weight"),
        ConfigValue("intermediate_size", 1_000_000_000, Weights, "bert.encoder.layer.0.intermediate.dense.weight"),
        ConfigValue("max_position_embeddings", 1_000_000_000, Weights,
            "bert.embeddings.position_embeddings.weight"),
        ConfigValue("type_vocab_size", 1_000_000_000, Weights, "bert.embeddings.token_type_embeddings.weight"),
        ConfigValue("pad_token_id", 1_000_000_000, Config, "pad_token_id"),
        new("num_labels=1e9", dir => EditConfig(dir, c =>
        {
            c.Remove("id2label");
            c.Remove("label2id");
            c["num_labels"] = 1_000_000_000;
        }), Config, "num_labels"),
        new("num_labels=1000", dir => EditConfig(dir, c =>
        {
            c.Remove("id2label");
            c.Remove("label2id");
            c["num_labels"] = 1000;
        }), Weights, "classifier.weight"),
        new("gate_positions=1e9", dir =>
        {
            AddGates(dir, _ => 1f);
            EditConfig(dir, c => c["gate_positions"] = 1_000_000_000);
        }, Weights, "bert.encoder.layer.0.gate"),
        new("config duplicate key", dir => File.WriteAllText(Path.Combine(dir, Config),
            File.ReadAllText(Path.Combine(dir, Config))
                .Replace("\"vocab_size\"", "\"hidden_size\": 32, \"vocab_size\"")), Config, "hidden_size"),
        // Layer indices in tensor names.
        LayerName("99999999999"),
        LayerName("\u0663"),
        LayerName("01"),
        // The tensors must tile the data section, starting where the header ends.
        .. Enumerable.Range(1, 6).Select(k => new Case($"header length -{k}", dir =>
            EditBytes(dir, b => BinaryPrimitives.WriteUInt64LittleEndian(b, HeaderLength(b) - (ulong)k)), Weights,
            null)),
        new("1 MiB appended", dir => EditBytes(dir, _ => { }, append: 1 << 20), Weights, null),
        new("gap between tensors", dir => EditHeader(dir, h => Shift(h, FirstTensor, 4)), Weights, null),
        new("overlapping tensors", dir => EditHeader(dir, h =>
        {
            var first = h[FirstTensor]!["data_offsets"]!.AsArray();
            h["bert.embeddings.LayerNorm.weight"]!["data_offsets"] = first.DeepClone();
        }), Weights, null),
        new("tensor name with a newline", dir => EditHeader(dir, h =>
        {
            var node = h[FirstTensor]!;
            h.Remove(FirstTensor);
            h["evil\nname"] = node;
        }), Weights, null),
        new("/etc/passwd as weights", dir => File.WriteAllText(Path.Combine(dir, Weights),
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"), Weights, null),
        // Weights and gates.
        new("NaN weight", dir => EditTensor(dir, "bert.encoder.layer.1.output.dense.weight", float.NaN), Weights,
            "bert.encoder.layer.1.output.dense.weight"),
        new("infinite weight", dir => EditTensor(dir, "classifier.bias", float.PositiveInfinity), Weights,
            "classifier.bias"),
        .. new[] { float.NaN, float.PositiveInfinity, 5f, -3f }.Select(g => new Case($"gate {g}",
            dir => AddGates(dir, i => i == 3 ? g : 0.5f), Weights, "bert.encoder.layer.0.gate")),
        // Text files: devices, oversize files, empty special tokens.
        new("config.json -> /dev/zero", dir => Link(dir, Config, "/dev/zero"), Config, null),
        new("vocab.txt -> /dev/urandom", dir => Link(dir, Vocab, "/dev/urandom"), Vocab, null),
        new("tokenizer_config.json is a FIFO", dir => Fifo(Path.Combine(dir, TokConfig)), TokConfig, null),
        new("config.json -> FIFO", dir =>
        {
            Fifo(Path.Combine(dir, "pipe"));
            Link(dir, Config, Path.Combine(dir, "pipe"));
        }, Config, null),
        new("config.json of 17 MB", dir => File.WriteAllText(Path.Combine(dir, Config),
            "{" + new string(' ', 17 << 20) + "}"), Config, null),
        new("empty cls_token", dir => File.WriteAllText(Path.Combine(dir, TokConfig), "{\"cls_token\": \"\"}"),
            TokConfig, "cls_token"),
        new("empty sep_token content", dir => File.WriteAllText(Path.Combine(dir, TokConfig),
            "{\"sep_token\": {\"content\": \"\"}}"), TokConfig, "sep_token"),
    ];

    public static TheoryData<Case> AllCases() => new(Cases);

    [Theory]
    [MemberData(nameof(AllCases))]
    public void HostileDirectoryFailsCleanly(Case c)
    {
        using var tmp = Spoilt(c);
        var (error, allocated) = Bounded(() => BertCheckpoint.Load(tmp.Path));
        Assert.True(allocated < MaxAllocated, $"{c.Name}: allocated {allocated >> 20} MB");
        var e = Assert.IsType<InvalidDataException>(error);
        AssertNames(c, e.Message);
        output.WriteLine($"{c.Name}: {e.Message}");
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void HostileDirectoryGivesOneErrorLineInTheCli(Case c)
    {
        using var tmp = Spoilt(c);
        var (code, _, err) = Within(() => CliRun.Run("classify", "--model", tmp.Path, "a fine day"));
        Assert.Equal(1, code);
        Assert.True(OneErrorLine(err), err);
        AssertNames(c, err.TrimEnd());
    }

    [Fact]
    public void ErrorsDoNotEchoForeignBytesAsNumbers()
    {
        using var tmp = Spoilt(Cases.Single(c => c.Name == "/etc/passwd as weights"));
        string message = Assert.IsType<InvalidDataException>(Bounded(() => BertCheckpoint.Load(tmp.Path)).Error)
            .Message;
        ulong garbage = BinaryPrimitives.ReadUInt64LittleEndian(Encoding.ASCII.GetBytes("root:x:0"));
        Assert.DoesNotContain(garbage.ToString(), message);
    }

    [Fact]
    public void LongRunOfCombiningMarksIsTokenizedQuickly()
    {
        var tokenizer = BertWordPieceTokenizer.Load(Path.Combine(ModelTestFiles.TinyBert, Vocab));
        // Alternating classes 230 and 220: canonical ordering must move every other mark.
        var text = "a" + string.Concat(Enumerable.Repeat("\u0301\u0316", 100_000));
        var sw = Stopwatch.StartNew();
        Within(() => tokenizer.Encode(text, maxLength: 16));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
    }

    [Fact]
    public void CanonicalOrderingSortsEachRunStably()
    {
        // U+0316 (class 220) moves before U+0301 and U+0300 (both 230), which keep their order; the starter
        // between the runs is a barrier.
        var d = UnicodeText.Nfd(UnicodeText.CodePoints("a\u0301\u0316\u0300b\u0300\u0316"));
        Assert.Equal(new[] { 'a', 0x316, 0x301, 0x300, 'b', 0x316, 0x300 }, d);
    }

    /// <summary>Random mutations of the safetensors header, config.json and tokenizer_config.json, fixed seed:
    /// every load either succeeds (with the fixture's weights when only the header changed) and classifies, or
    /// throws one of the expected exception types naming the mutated file.</summary>
    [Fact]
    public void FuzzedHeadersAndConfigsFailCleanly()
    {
        var random = new Random(19);
        var original = Load(ModelTestFiles.TinyBert);
        byte[] weights = File.ReadAllBytes(Path.Combine(ModelTestFiles.TinyBert, Weights));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(ModelTestFiles.TinyBert, Config)))!.AsObject();
        var tokConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(ModelTestFiles.TinyBert, TokConfig)))!
            .AsObject();
        int runs = 0, loaded = 0, wrong = 0;
        var clock = Stopwatch.StartNew();
        using var tmp = new ModelTestFiles.TempDir();
        foreach (var name in new[] { Config, Weights, Vocab, TokConfig })
            File.Copy(Path.Combine(ModelTestFiles.TinyBert, name), tmp.File(name));
        // A fixed number of runs, not a time budget: a loaded machine makes the test slower, never weaker.
        for (; runs < 400; runs++)
        {
            // One file mutated per run, in turn.
            string mutated = (runs % 3) switch { 0 => Weights, 1 => Config, _ => TokConfig };
            bool header = mutated == Weights;
            File.WriteAllBytes(tmp.File(Weights), header ? MutateHeader(weights, random) : weights);
            File.WriteAllText(tmp.File(Config), mutated == Config ? Mutate(config, ConfigKeys, random)
                : config.ToJsonString());
            File.WriteAllText(tmp.File(TokConfig), mutated == TokConfig ? Mutate(tokConfig, TokenizerKeys, random)
                : tokConfig.ToJsonString());
            var (error, allocated) = Bounded(() => BertCheckpoint.Load(tmp.Path));
            Assert.True(allocated < MaxAllocated, $"run {runs}: allocated {allocated >> 20} MB");
            if (error is null)
            {
                loaded++;
                if (header && !SameWeights(original, Load(tmp.Path))) wrong++;
                // What loads must also run: an answer without NaN, or one clean error line.
                var (code, stdout, stderr) = Within(() => CliRun.Run("classify", "--model", tmp.Path, "a fine day"));
                Assert.True(code == 0 ? !stdout.Contains("NaN") : code == 1 && OneErrorLine(stderr),
                    $"run {runs}: exit {code}, {stdout}{stderr}");
                continue;
            }
            Assert.True(error is InvalidDataException or FileNotFoundException or NotSupportedException,
                $"run {runs}: {error.GetType().Name}: {error.Message}");
            Assert.Contains(tmp.Path, error.Message);
            Assert.Contains(mutated, error.Message);
            Assert.DoesNotContain('\n', error.Message);
        }
        output.WriteLine($"{runs} runs, {loaded} loaded and classified, {wrong} wrong answers, {clock.Elapsed}");
        Assert.Equal(0, wrong);
    }

    static readonly string[] Junk = ["-1", "0", "1", "4294967296", "99999999999999999999", "1e400", "2147483647",
        "\"x\"", "\"\"", "null", "[]", "{}", "1.5", "true"];

    static byte[] MutateHeader(byte[] file, Random random)
    {
        var b = (byte[])file.Clone();
        int n = (int)HeaderLength(b);
        string header = Encoding.UTF8.GetString(b, 8, n);
        switch (random.Next(4))
        {
            case 0:
                b[8 + random.Next(n)] = (byte)"{}[],:\"0123456789-e FI"[random.Next(22)];
                break;
            case 1:
                b[random.Next(8 + n)] = (byte)random.Next(256);
                break;
            case 2:
                BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)(n + random.Next(-8, 9)));
                break;
            default:
                // A number of the header (shape or offset) becomes something else, with the header re-padded.
                var numbers = System.Text.RegularExpressions.Regex.Matches(header, "[0-9]+");
                var m = numbers[random.Next(numbers.Count)];
                string edited = header[..m.Index] + Junk[random.Next(Junk.Length)] + header[(m.Index + m.Length)..];
                return WithHeader(b, edited, n);
        }
        return b;
    }

    static readonly string[] ConfigKeys = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size", "pad_token_id", "layer_norm_eps",
        "gate_positions", "num_labels", "id2label", "problem_type", "precision", "gate_threshold", "hidden_act"];

    static readonly string[] TokenizerKeys = ["do_lower_case", "strip_accents", "tokenize_chinese_chars",
        "model_max_length", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    /// <summary>One to three of <paramref name="keys"/> set to junk or deleted.</summary>
    static string Mutate(JsonObject json, string[] keys, Random random)
    {
        var c = (JsonObject)json.DeepClone();
        for (int k = random.Next(1, 4); k > 0; k--)
        {
            string key = keys[random.Next(keys.Length)];
            if (random.Next(6) == 0) c.Remove(key);
            else c[key] = JsonNode.Parse(Junk[random.Next(Junk.Length)]);
        }
        return c.ToJsonString();
    }

    static BertWeights Load(string dir) => BertCheckpoint.Load(dir).Weights;

    static bool SameWeights(BertWeights a, BertWeights b) =>
        a.Named().Zip(b.Named()).All(p => p.First.Name == p.Second.Name
            && p.First.Param.Values.AsSpan().SequenceEqual(p.Second.Param.Values));

    /// <summary>Runs <paramref name="load"/> with a time limit and returns what it threw and how much it
    /// allocated on its thread (other tests run in parallel, so process-wide counts would include theirs).</summary>
    static (Exception? Error, long Allocated) Bounded(Action load) => Within(() =>
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try { load(); }
        catch (Exception e) { return (e, GC.GetAllocatedBytesForCurrentThread() - before); }
        return ((Exception?)null, GC.GetAllocatedBytesForCurrentThread() - before);
    });

    /// <summary>Runs <paramref name="work"/> on a pool thread and fails the test if it takes longer than
    /// <see cref="Timeout"/> (a hang must not stall the suite).</summary>
    static T Within<T>(Func<T> work)
    {
        var run = Task.Run(work);
        Assert.True(run.Wait(Timeout), $"did not finish within {Timeout.TotalSeconds} s");
        return run.Result;
    }

    static bool OneErrorLine(string stderr) =>
        stderr.StartsWith("error: ", StringComparison.Ordinal) && stderr.TrimEnd().IndexOf('\n') < 0;

    static void AssertNames(Case c, string message)
    {
        Assert.Contains(c.File, message);
        if (c.Key is not null) Assert.Contains(c.Key, message);
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain("An item with the same key", message);
    }

    static ModelTestFiles.TempDir Spoilt(Case c)
    {
        var tmp = new ModelTestFiles.TempDir();
        foreach (var name in new[] { Config, Weights, Vocab, TokConfig })
            File.Copy(Path.Combine(ModelTestFiles.TinyBert, name), tmp.File(name));
        c.Spoil(tmp.Path);
        return tmp;
    }

    static void EditConfig(string dir, Action<JsonObject> edit)
    {
        string path = Path.Combine(dir, Config);
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    static ulong HeaderLength(byte[] file) => BinaryPrimitives.ReadUInt64LittleEndian(file);

    static void EditBytes(string dir, Action<byte[]> edit, int append = 0)
    {
        string path = Path.Combine(dir, Weights);
        var bytes = File.ReadAllBytes(path);
        edit(bytes);
        File.WriteAllBytes(path, [.. bytes, .. new byte[append]]);
    }

    static void EditHeader(string dir, Action<JsonObject> edit)
    {
        string path = Path.Combine(dir, Weights);
        var bytes = File.ReadAllBytes(path);
        int n = (int)HeaderLength(bytes);
        var header = JsonNode.Parse(bytes.AsSpan(8, n))!.AsObject();
        edit(header);
        File.WriteAllBytes(path, WithHeader(bytes, header.ToJsonString(), n));
    }

    /// <summary>The file with a new header text and the old data section.</summary>
    static byte[] WithHeader(byte[] file, string header, int oldLength)
    {
        var text = Encoding.UTF8.GetBytes(header);
        var result = new byte[8 + text.Length + file.Length - 8 - oldLength];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)text.Length);
        text.CopyTo(result, 8);
        file.AsSpan(8 + oldLength).CopyTo(result.AsSpan(8 + text.Length));
        return result;
    }

    /// <summary>Moves one tensor's offsets by <paramref name="by"/> bytes, leaving a gap before it.</summary>
    static void Shift(JsonObject header, string name, long by)
    {
        var offsets = header[name]!["data_offsets"]!.AsArray();
        header[name]!["data_offsets"] = new JsonArray((long)offsets[0]! + by, (long)offsets[1]! + by);
    }

    static Case LayerName(string index) => new($"layer index {index}", dir => EditHeader(dir, h =>
    {
        var node = h[FirstTensor]!;
        h.Remove(FirstTensor);
        h[$"bert.encoder.layer.{index}.output.dense.bias"] = node;
    }), Weights, $"bert.encoder.layer.{index}.output.dense.bias");

    /// <summary>Writes one value into a stored F32 tensor.</summary>
    static void EditTensor(string dir, string name, float value)
    {
        string path = Path.Combine(dir, Weights);
        long at;
        using (var file = SafeTensorsFile.Open(path))
            at = 8 + (long)HeaderLength(File.ReadAllBytes(path)) + file.Tensors[name].Begin;
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)at), value);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Rewrites the weights with 64-position gates of value <paramref name="gate"/>(position).</summary>
    static void AddGates(string dir, Func<int, float> gate)
    {
        var tensors = ModelTestFiles.TinyTensors();
        for (int j = 0; j < 2; j++)
            tensors.Add(($"bert.encoder.layer.{j}.gate", [64], Enumerable.Range(0, 64).Select(gate).ToArray()));
        SafeTensors.Write(Path.Combine(dir, Weights), tensors);
    }

    static void Link(string dir, string name, string target)
    {
        File.Delete(Path.Combine(dir, name));
        File.CreateSymbolicLink(Path.Combine(dir, name), target);
    }

    static void Fifo(string path)
    {
        File.Delete(path);
        using var mkfifo = Process.Start("mkfifo", path);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }
}
