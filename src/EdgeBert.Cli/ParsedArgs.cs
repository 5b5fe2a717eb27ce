using System.Globalization;

namespace EdgeBert.Cli;

/// <summary>"--name value", "--flag" and positional arguments. A flag is an option followed by
/// nothing or by another option; verbs declare which names are flags so that "--flag text" works.</summary>
sealed class ParsedArgs
{
    readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    readonly HashSet<string> _consumed = new(StringComparer.Ordinal);
    public List<string> Positionals { get; } = new();

    public static ParsedArgs Parse(string[] args)
    {
        var p = new ParsedArgs();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                else if (i + 1 < args.Length && !IsOption(args[i + 1])) value = args[++i];
                if (p._options.ContainsKey(name)) throw new UsageException($"option --{name} given twice");
                p._options[name] = value;
            }
            else if (a == "-h") p._options["h"] = null;
            else p.Positionals.Add(a);
        }
        return p;
    }

    static bool IsOption(string s) => s.StartsWith("--", StringComparison.Ordinal) && s.Length > 2;

    public bool Has(string name) => _options.ContainsKey(name);

    /// <summary>A boolean flag. If the parser took the next word as its value, that word is a positional.</summary>
    public bool Flag(string name)
    {
        if (!_options.TryGetValue(name, out var v)) return false;
        _consumed.Add(name);
        if (v is not null) { Positionals.Add(v); _options[name] = null; }
        return true;
    }

    public string? String(string name)
    {
        if (!_options.TryGetValue(name, out var v)) return null;
        _consumed.Add(name);
        return v ?? throw new UsageException($"option --{name} needs a value");
    }

    public string RequiredString(string name) => String(name) ?? throw new UsageException($"missing --{name}");

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
            throw new UsageException($"--{name} expects an integer, got '{s}'");
        if (v < min || v > max)
            throw new UsageException($"--{name} must be between {min} and {max}, got {v}");
        return v;
    }

    public int RequiredInt(string name, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!Has(name)) throw new UsageException($"missing --{name}");
        return Int(name, 0, min, max);
    }

    public double Double(string name, double fallback, double min = double.NegativeInfinity,
        double max = double.PositiveInfinity)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || double.IsNaN(v))
            throw new UsageException($"--{name} expects a number, got '{s}'");
        if (v < min || v > max)
            throw new UsageException($"--{name} must be between {min} and {max}, got {v}");
        return v;
    }

    /// <summary>--threads N, by default the number of cores: one default for every verb that computes.</summary>
    public int Threads() => Int("threads", Environment.ProcessorCount, 1, 256);

    /// <summary>Old flag names and the names that replaced them (one name per flag across verbs).</summary>
    static readonly Dictionary<string, string> Renamed = new(StringComparer.Ordinal) { ["max-length"] = "max-len" };

    /// <summary>Call after reading every option a verb knows: anything left is a usage error.</summary>
    public void RejectUnknown(int maxPositionals = 0)
    {
        foreach (var name in _options.Keys)
        {
            if (_consumed.Contains(name)) continue;
            throw new UsageException(Renamed.TryGetValue(name, out var now)
                ? $"--{name} is now --{now}" : $"unknown option --{name}");
        }
        if (Positionals.Count > maxPositionals)
            throw new UsageException($"unexpected argument '{Positionals[maxPositionals]}'");
    }
}
