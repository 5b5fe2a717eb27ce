using System.Diagnostics;
using EdgeBert.Model;
using EdgeBert.Training;

namespace EdgeBert.Tests;

/// <summary>Issue 19, the writing side: outputs never go through a planted link and leave nothing behind on
/// failure, `infer` reads only a bounded regular file, resume survives an interrupted swap and refuses changed
/// settings, and a workspace shared by two running threads is detected.</summary>
public sealed class HostileIoTests : IDisposable
{
    const string Victim = "precious content\n";
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    readonly ModelTestFiles.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string Input(string content = "{\"text\": \"a fine film\"}\n{\"text\": \"a dull film\"}\n")
    {
        string path = _dir.File("in.jsonl");
        File.WriteAllText(path, content);
        return path;
    }

    string PlantVictim()
    {
        string victim = _dir.File("victim.txt");
        File.WriteAllText(victim, Victim);
        return victim;
    }

    static (int Code, string Out, string Err) Infer(string input, string output) =>
        CliRun.Run("infer", "--model", ModelTestFiles.TinyBert, "--input", input, "--output", output,
            "--threads", "1");

    /// <summary>Runs the CLI on a task, so a hang fails the test instead of the test run.</summary>
    static (int Code, string Out, string Err) InferWithin(string input, string output)
    {
        var run = Task.Run(() => Infer(input, output));
        Assert.True(run.Wait(Bound), $"infer --input {input} did not finish within {Bound.TotalSeconds} s");
        return run.Result;
    }

    static void AssertOneErrorLine(string stderr, string contains)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal),
            $"expected one error line, got:\n{stderr}");
        Assert.Contains(contains, lines[0]);
    }

    [Fact]
    public void InferDoesNotWriteThroughALinkPlantedAtTheOldPartialName()
    {
        string victim = PlantVictim(), output = _dir.File("out.jsonl");
        File.CreateSymbolicLink(output + ".partial", victim);

        var (code, _, stderr) = Infer(Input(), output);

        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Equal(Victim, File.ReadAllText(victim));
        Assert.Null(new FileInfo(output).LinkTarget);
        Assert.Equal(2, File.ReadAllLines(output).Length);
    }

    [Fact]
    public void AnOutputThatIsALinkIsReplacedNotWrittenThrough()
    {
        string victim = PlantVictim(), output = _dir.File("out.jsonl");
        File.CreateSymbolicLink(output, victim);

        Assert.Equal(0, Infer(Input(), output).Code);

        Assert.Equal(Victim, File.ReadAllText(victim));
        Assert.Null(new FileInfo(output).LinkTarget);
    }

    [Fact]
    public void WritersIgnoreLinksPlantedAtEveryNameTheyUsedToUse()
    {
        string victim = PlantVictim();
        int pid = Environment.ProcessId;
        foreach (var name in new[] { $"config.json.{pid}.tmp", $"vocab.txt.tmp-{pid}", "model.safetensors.partial" })
            File.CreateSymbolicLink(_dir.File(name), victim);

        var config = BertCheckpoint.Load(ModelTestFiles.TinyBert).Config;
        config.Save(_dir.File("config.json"));
        WordPieceTrainer.WriteVocab(_dir.File("vocab.txt"), ["[PAD]", "a"]);
        SafeTensors.Write(_dir.File("model.safetensors"), ModelTestFiles.TinyTensors());

        Assert.Equal(Victim, File.ReadAllText(victim));
        var saved = BertConfig.Parse(File.ReadAllText(_dir.File("config.json")), "config.json");
        Assert.Equal(config.Labels, saved.Labels);
        Assert.Equal(["[PAD]", "a"], File.ReadAllLines(_dir.File("vocab.txt")));
    }

    [Fact]
    public void TheTemporaryNameIsFreshEachTimeAndNeverALink()
    {
        var names = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            AtomicFile.Write(_dir.File("out.txt"), stream =>
            {
                Assert.Null(new FileInfo(stream.Name).LinkTarget);
                names.Add(Path.GetFileName(stream.Name));
                stream.Write("x"u8);
            });
        }
        Assert.NotEqual(names[0], names[1]);
        Assert.All(names, n => Assert.DoesNotContain(Environment.ProcessId.ToString(), n));
        Assert.Equal("x", File.ReadAllText(_dir.File("out.txt")));
    }

    [Fact]
    public void AFailedWriteLeavesNoTemporaryFileAndTheOldContent()
    {
        string target = _dir.File("out.txt");
        File.WriteAllText(target, "old");
        Assert.Throws<InvalidDataException>(() => AtomicFile.Write(target, stream =>
        {
            stream.Write("half"u8);
            throw new InvalidDataException("failed half-way");
        }));
        Assert.Equal(["out.txt"], Directory.GetFiles(_dir.Path).Select(Path.GetFileName));
        Assert.Equal("old", File.ReadAllText(target));
    }

    [Fact]
    public void AFailedInferLeavesNoFileBehind()
    {
        string input = Input("{\"text\": \"fine\"}\n{\"input_ids\": [999999]}\n");
        var (code, _, stderr) = Infer(input, _dir.File("out.jsonl"));
        Assert.Equal(1, code);
        AssertOneErrorLine(stderr, "line 2");
        Assert.Equal(["in.jsonl"], Directory.GetFiles(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task InterruptingInferLeavesNoFileBehind()
    {
        if (!OperatingSystem.IsLinux()) return;
        // Enough long lines that writing them takes seconds, one at a time on one thread.
        string text = string.Join(' ', Enumerable.Repeat("a fine film with a dull end", 20));
        string line = $"{{\"text\": \"{text}\"}}\n";
        string input = Input(string.Concat(Enumerable.Repeat(line, 8_000)));
        // A shell runs infer, waits for its temporary file (so the clean-up is tested, not the start-up) and sends
        // SIGTERM, which StopSignal treats as Ctrl+C's SIGINT (a background job inherits SIGINT ignored, so SIGINT
        // would test nothing here). The shell, not this process, signals: its process ids are the ones it started.
        string script = """
            dotnet "$0" infer --model "$1" --input "$2" --output "$3/out.jsonl" --threads 1 --batch-size 1 &
            pid=$!
            while ! ls -a "$3" | grep -q '^\.out\.jsonl\..*\.tmp$'; do
                kill -0 $pid 2>/dev/null || { echo "ended before the interrupt"; exit 1; }
                sleep 0.005
            done
            kill -TERM $pid
            wait $pid
            echo "exit $?"
            """;
        var start = new ProcessStartInfo("sh", ["-c", script, Path.Combine(AppContext.BaseDirectory, "edgebert.dll"),
            ModelTestFiles.TinyBert, input, _dir.Path])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var exited = process.WaitForExitAsync();
        // The bound covers reading and tokenizing the input too, which a loaded machine can stretch to a minute.
        bool finished = await Task.WhenAny(exited, Task.Delay(3 * Bound)) == exited;
        if (!finished) process.Kill(entireProcessTree: true);
        Assert.True(finished, "infer did not stop on SIGTERM");
        string printed = await stdout;
        Assert.True(printed.Contains("interrupted: ") && printed.Contains("exit 130"), printed + await stderr);
        Assert.Equal(["in.jsonl"], Directory.GetFiles(_dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void OutputNamingTheInputIsAUsageErrorAndTheInputIsKept()
    {
        string content = "{\"text\": \"keep me\"}\n";
        string input = Input(content);
        Directory.CreateDirectory(_dir.File("sub"));
        File.CreateSymbolicLink(_dir.File("link.jsonl"), input);
        Directory.CreateSymbolicLink(_dir.File("linked-dir"), _dir.Path);
        foreach (var output in new[]
                 {
                     input, Path.Combine(_dir.Path, "sub", "..", "in.jsonl"), _dir.File("link.jsonl"),
                     Path.Combine(_dir.File("linked-dir"), "in.jsonl"),
                 })
        {
            var (code, _, stderr) = Infer(input, output);
            Assert.True(code == 2, $"--output {output}: exit {code}, {stderr}");
            Assert.Contains("is the input file", stderr);
            Assert.Equal(content, File.ReadAllText(input));
        }
    }

    [Fact]
    public void InferRefusesDevZeroQuickly()
    {
        if (!File.Exists("/dev/zero")) return;
        var (code, _, stderr) = InferWithin("/dev/zero", _dir.File("out.jsonl"));
        Assert.Equal(1, code);
        AssertOneErrorLine(stderr, OperatingSystem.IsLinux() ? "/dev/zero: a character device" : "/dev/zero");
        Assert.False(File.Exists(_dir.File("out.jsonl")));
    }

    [Fact]
    public async Task InferRefusesAFifoInsteadOfWaitingForAWriter()
    {
        if (!OperatingSystem.IsLinux()) return;
        string fifo = _dir.File("in.fifo");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }
        var run = Task.Run(() => Infer(fifo, _dir.File("out.jsonl")));
        bool finished = await Task.WhenAny(run, Task.Delay(Bound)) == run;
        if (!finished)
        {
            // Release the blocked reader so the failing test does not leave a thread stuck for ever.
            using var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write);
        }
        Assert.True(finished, "infer blocked on a FIFO");
        var (code, _, stderr) = await run;
        Assert.Equal(1, code);
        AssertOneErrorLine(stderr, "FIFO");
    }

    [Fact]
    public void AnOverlongLineIsAnErrorNamingItsLine()
    {
        string line = "{\"text\": \"" + new string('a', (1 << 20) + 10) + "\"}";
        var (code, _, stderr) = InferWithin(Input("{\"text\": \"fine\"}\n" + line + "\n"), _dir.File("out.jsonl"));
        Assert.Equal(1, code);
        AssertOneErrorLine(stderr, "line 2");
        Assert.Contains("longer than", stderr);
    }

    [Fact]
    public void CrLfLinesAndALastLineWithoutNewlineStillRead()
    {
        var (code, _, stderr) = Infer(Input("{\"text\": \"one\"}\r\n{\"text\": \"two\"}"), _dir.File("out.jsonl"));
        Assert.True(code == 0, stderr);
        Assert.Equal(2, File.ReadAllLines(_dir.File("out.jsonl")).Length);
    }

    // Resume.

    static void WriteState(string dir, string marker)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "which"), marker);
    }

    static string Which(string dir) => File.ReadAllText(Path.Combine(dir, "which"));

    [Fact]
    public void RecoveryPicksTheFolderAnInterruptedSwapLeftWhole()
    {
        string target = _dir.File("resume");
        // Killed between the renames: resume.new is complete, resume.old is the state before it.
        WriteState(target + ".old", "old");
        WriteState(target + ".new", "new");
        Assert.NotNull(RunFiles.RecoverDirectory(target));
        Assert.Equal("new", Which(target));

        // The old code's interruption: only resume.old (its new folder was named resume.tmp).
        Directory.Delete(target, true);
        WriteState(target + ".old", "old");
        Assert.NotNull(RunFiles.RecoverDirectory(target));
        Assert.Equal("old", Which(target));

        // Killed while writing resume.new: resume is the whole one, the rest is dropped.
        WriteState(target + ".new", "half");
        Assert.Null(RunFiles.RecoverDirectory(target));
        Assert.Equal("old", Which(target));
        Assert.False(Directory.Exists(target + ".new"));

        // A first save killed while writing: nothing to resume from.
        Directory.Delete(target, true);
        WriteState(target + ".new", "half");
        Assert.Null(RunFiles.RecoverDirectory(target));
        Assert.False(Directory.Exists(target) || Directory.Exists(target + ".new"));
    }

    [Fact]
    public void ReplaceDirectoryLeavesOnlyTheNewFolder()
    {
        string target = _dir.File("resume");
        RunFiles.ReplaceDirectory(target, d => File.WriteAllText(Path.Combine(d, "which"), "first"));
        RunFiles.ReplaceDirectory(target, d => File.WriteAllText(Path.Combine(d, "which"), "second"));
        Assert.Equal("second", Which(target));
        Assert.Equal([target], Directory.GetDirectories(_dir.Path));
    }

    FineTuneOptions SmallRun(string outDir)
    {
        var (vocab, train, dev) = GateLearningTests.MakeTask(_dir.Path);
        return new FineTuneOptions
        {
            Task = GlueTask.Sst2, TrainExamples = train.Take(256).ToList(), DevExamples = dev.Take(32).ToList(),
            Init = "random:tiny", Vocab = vocab, OutputDirectory = outDir, Epochs = 1, LearningRate = 2e-3f,
            BatchSize = 16, MaxLength = 32, Threads = 1, Seed = 3,
        };
    }

    /// <summary>Trains until batch 4 of the first epoch, then stops as Ctrl+C would (saving the resume state).
    /// </summary>
    static void Interrupted(FineTuneOptions options)
    {
        using var cancel = new CancellationTokenSource();
        new FineTuner(options, TextWriter.Null, p =>
        {
            if (p.Batch == 4) cancel.Cancel();
        }).Run(cancel.Token);
    }

    [Fact]
    public void ResumeFromALeftoverOldFolderContinuesLikeAnUninterruptedSwap()
    {
        string clean = _dir.File("clean"), killed = _dir.File("killed");
        Interrupted(SmallRun(clean));
        Interrupted(SmallRun(killed));
        // What a kill between the old code's two renames left: the state only under resume.old.
        string resume = Path.Combine(killed, FineTuner.ResumeFolder);
        Directory.Move(resume, resume + ".old");

        new FineTuner(SmallRun(clean) with { Resume = true }, TextWriter.Null).Run();
        var log = new StringWriter();
        new FineTuner(SmallRun(killed) with { Resume = true }, log).Run();

        Assert.Contains("recovered", log.ToString());
        Assert.DoesNotContain("no resume state", log.ToString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(clean, "model.safetensors")),
            File.ReadAllBytes(Path.Combine(killed, "model.safetensors")));
    }

    [Fact]
    public void ResumeWithAnotherBatchSizeOrSeedIsRefusedNamingThem()
    {
        string outDir = _dir.File("out");
        Interrupted(SmallRun(outDir));
        var changed = SmallRun(outDir) with { Resume = true, BatchSize = 8, Seed = 4 };
        var e = Assert.Throws<ArgumentException>(() => new FineTuner(changed, TextWriter.Null).Run());
        Assert.Contains("--batch-size 16 -> 8", e.Message);
        Assert.Contains("--seed 3 -> 4", e.Message);
        Assert.DoesNotContain("--lr", e.Message);
        // The state is still there for a resume with the original settings.
        Assert.True(File.Exists(Path.Combine(outDir, FineTuner.ResumeFolder, "trainer_state.bin")));
    }

    // Thread safety.

    [Fact]
    public void AWorkspaceInUseIsRefused()
    {
        var engine = EngineFixtures.TinyF32.Value;
        var workspace = new InferenceWorkspace();
        SequenceInput[] batch = [new([101, 102])];
        workspace.Enter();
        var e = Assert.Throws<InvalidOperationException>(() => engine.Run(batch, workspace));
        Assert.Contains("two threads at once", e.Message);
        workspace.Exit();
        Assert.Single(engine.Run(batch, workspace));
    }

    [Fact]
    public void TwoThreadsSharingOneWorkspaceAreDetected()
    {
        var engine = EngineFixtures.TinyF32.Value;
        var workspace = new InferenceWorkspace();
        var batch = EngineFixtures.RandomSequences(engine.Config, Enumerable.Repeat(32, 8), seed: 5).ToArray();
        int detected = 0;
        using var start = new Barrier(2);
        var deadline = Stopwatch.StartNew();
        void Loop()
        {
            start.SignalAndWait();
            while (Volatile.Read(ref detected) == 0 && deadline.Elapsed < TimeSpan.FromSeconds(20))
            {
                try
                {
                    engine.Run(batch, workspace);
                }
                catch (InvalidOperationException e) when (e.Message.Contains("two threads at once"))
                {
                    Interlocked.Exchange(ref detected, 1);
                }
            }
        }
        var threads = new[] { new Thread(Loop), new Thread(Loop) };
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Assert.Equal(1, detected);
    }
}
