using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>The --precision option of the verbs that run a model.</summary>
static class PrecisionOption
{
    /// <summary>The engine options --precision asks for (null: the model's own precision).</summary>
    public static EngineOptions Read(ParsedArgs a) =>
        new() { Precision = a.String("precision") is { } text ? Parse(text) : null };

    public static Precision Parse(string text) => text switch
    {
        "fp32" => Precision.Fp32,
        "int8" => Precision.Int8,
        _ => throw new UsageException($"--precision must be fp32 or int8, got '{text}'"),
    };

    public static Precision[] ParseList(string text) =>
        [.. text.Split(',', StringSplitOptions.TrimEntries).Select(Parse).Distinct()];
}
