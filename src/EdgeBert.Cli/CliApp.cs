namespace EdgeBert.Cli;

/// <summary>The `edgebert` command: one verb per job. Usage errors exit 2, bad input exits 1,
/// both with a single "error: ..." line on stderr and never a stack trace.</summary>
static class CliApp
{
    /// <summary>A verb: its name, one-line summary, usage text, and the code that runs it.</summary>
    public sealed record Verb(string Name, string Summary, string Usage, Func<ParsedArgs, TextWriter, int> Run);

    static readonly List<Verb> Verbs = new();

    static readonly AsyncLocal<TextWriter?> CurrentError = new();

    /// <summary>The stderr of the running command (warnings, progress): the writer given to <see cref="Run"/>,
    /// so a caller running verbs in-process captures it too.</summary>
    internal static TextWriter Error => CurrentError.Value ?? Console.Error;

    static CliApp()
    {
        InferVerbs.Register(Verbs);
        TrainVerbs.Register(Verbs);
        ExportVerb.Register(Verbs);
        BenchVerbs.Register(Verbs);
        TokenizeVerb.Register(Verbs);
        SweepVerb.Register(Verbs);
        VocabVerb.Register(Verbs);
        InfoVerb.Register(Verbs);
        ImportVerb.Register(Verbs);
        EmbedVerb.Register(Verbs);
        SelfTestVerb.Register(Verbs);
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var outer = CurrentError.Value;
        CurrentError.Value = stderr;
        try { return RunVerb(args, stdout, stderr); }
        finally { CurrentError.Value = outer; }
    }

    /// <summary>The version of the edgebert assembly (its informational version, without build metadata).
    /// </summary>
    public static string Version =>
        (typeof(CliApp).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute),
            false).FirstOrDefault() as System.Reflection.AssemblyInformationalVersionAttribute)?.InformationalVersion
            .Split('+')[0] ?? "unknown";

    static int RunVerb(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintHelp(stdout);
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] is "--version" or "version")
        {
            if (args.Length > 1)
            {
                stderr.WriteLine($"error: unexpected argument '{args[1]}'");
                stderr.WriteLine("usage: edgebert --version");
                return 2;
            }
            stdout.WriteLine($"edgebert {Version}");
            return 0;
        }
        var verb = Verbs.FirstOrDefault(v => v.Name == args[0]);
        if (verb is null)
        {
            stderr.WriteLine($"error: unknown command '{args[0]}' (run 'edgebert --help' for the list)");
            return 2;
        }
        try
        {
            var parsed = ParsedArgs.Parse(args.AsSpan(1).ToArray());
            if (parsed.Has("help") || parsed.Has("h"))
            {
                stdout.WriteLine(verb.Usage);
                return 0;
            }
            return verb.Run(parsed, stdout);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            stderr.WriteLine($"usage: {UsageLine(verb, args)}");
            return 2;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or ArgumentException
                                      or UnauthorizedAccessException or NotSupportedException
                                      or InvalidOperationException)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return 1;
        }
    }

    static void PrintHelp(TextWriter o)
    {
        o.WriteLine("edgebert: run and train BERT encoders on the CPU, with learned token gates.");
        o.WriteLine();
        o.WriteLine("commands:");
        foreach (var v in Verbs) o.WriteLine($"  {v.Name,-10} {v.Summary}");
        o.WriteLine($"  {"version",-10} print the version (also --version)");
        o.WriteLine();
        o.WriteLine("'edgebert COMMAND --help' explains one command. --threads N defaults to the number of cores");
        o.WriteLine("(the bench commands: 1, so measurements compare across machines). Runs longer than a few");
        o.WriteLine("seconds show progress on stderr: a bar on a terminal, occasional plain lines when redirected.");
    }

    /// <summary>The usage line of the sub-command given (`bench encoder`), else the verb's first.</summary>
    static string UsageLine(Verb verb, string[] args)
    {
        if (args.Length > 1 && !args[1].StartsWith('-'))
        {
            string prefix = $"edgebert {verb.Name} {args[1]} ";
            foreach (var line in verb.Usage.Split('\n'))
                if (line.TrimStart().StartsWith(prefix, StringComparison.Ordinal)) return line.Trim();
        }
        return FirstLine(verb.Usage);
    }

    static string FirstLine(string s) => s.Split('\n')[0].TrimEnd();
    static string OneLine(string s) => s.Replace('\n', ' ').Replace('\r', ' ');
}

/// <summary>A mistake in how the command was called (exit code 2).</summary>
sealed class UsageException(string message) : Exception(message);
