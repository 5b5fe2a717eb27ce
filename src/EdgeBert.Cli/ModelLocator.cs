namespace EdgeBert.Cli;

/// <summary>Finds the model directory: --model, else EDGEBERT_MODEL, else the shipped default model
/// next to the executable or under the repository's weights/.</summary>
static class ModelLocator
{
    public const string DefaultModelName = "edgebert-mini-sst2";

    public static string Resolve(string? given)
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
        throw new UsageException($"no --model given, EDGEBERT_MODEL is not set and no weights/{DefaultModelName} was "
            + "found next to the executable or above the current directory");
    }
}
