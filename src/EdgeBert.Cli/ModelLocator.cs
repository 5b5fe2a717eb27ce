using System.Reflection;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>Finds the model: --model, else EDGEBERT_MODEL, else the shipped default model next to the executable
/// or under the repository's weights/, else the model embedded in the executable at publish time.</summary>
static class ModelLocator
{
    public const string DefaultModelName = "edgebert-minilm-sst2";

    /// <summary>A model directory; verbs that need the files themselves (training, export) use this.</summary>
    public static string Resolve(string? given) => FindDirectory(given) ?? throw NotFound();

    /// <summary>A model directory, else the embedded model.</summary>
    public static ModelSource ResolveSource(string? given) =>
        FindDirectory(given) is { } directory ? ModelSource.FromDirectory(directory)
            : EmbeddedModel.Source ?? throw NotFound();

    static string? FindDirectory(string? given)
    {
        if (given is not null) return given;
        var fromEnv = Environment.GetEnvironmentVariable("EDGEBERT_MODEL");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return fromEnv;
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "weights", DefaultModelName);
                if (Directory.Exists(candidate)) return candidate;
            }
        return null;
    }

    static UsageException NotFound() => new($"no --model given, EDGEBERT_MODEL is not set, no "
        + $"weights/{DefaultModelName} was found next to the executable or above the current directory, and the "
        + "executable embeds no model (tools/publish-aot.sh --model DIR)");
}

/// <summary>The model tools/publish-aot.sh --model (msbuild property EdgeBertEmbedModel) puts inside the executable
/// as resources under "model/", so the one file classifies wherever it is copied.</summary>
static class EmbeddedModel
{
    const string Prefix = "model/";
    static Assembly Assembly => typeof(EmbeddedModel).Assembly;

    /// <summary>The embedded model, or null when the executable was built without one.</summary>
    public static ModelSource? Source =>
        ModelSource.HasResources(Assembly, Prefix) ? ModelSource.FromResources(Assembly, Prefix) : null;

    /// <summary>Name, size and the directory it was embedded from, or "none".</summary>
    public static string Describe()
    {
        if (Source is null) return "none";
        string from = Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(m => m.Key == "EdgeBertEmbeddedModel")?.Value ?? "unknown";
        long bytes = Assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .Sum(ResourceLength);
        string name = Path.GetFileName(from.TrimEnd('/', '\\'));
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{name} ({bytes / 1e6:F1} MB, embedded from {from})");
    }

    static long ResourceLength(string name)
    {
        using var stream = Assembly.GetManifestResourceStream(name);
        return stream?.Length ?? 0;
    }
}
