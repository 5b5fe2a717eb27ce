using EdgeBert.Autograd;

namespace EdgeBert.Training;

/// <summary>What every training loop needs: reproducible data orders and folders replaced atomically.</summary>
public static class RunFiles
{
    /// <summary>A permutation of 0..count-1 fixed by <paramref name="seed"/> (Fisher-Yates), so a resumed
    /// run sees the same order as an uninterrupted one.</summary>
    public static int[] Permutation(int count, ulong seed)
    {
        var order = Enumerable.Range(0, count).ToArray();
        var rng = new Rng(seed);
        for (int i = count - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>Writes a folder's new contents beside it (TARGET.new), then swaps it in: TARGET -> TARGET.old,
    /// TARGET.new -> TARGET, delete TARGET.old. TARGET.new is renamed only once complete, so after an
    /// interruption at any moment <see cref="RecoverDirectory"/> knows which folder is whole.</summary>
    public static void ReplaceDirectory(string target, Action<string> writeInto)
    {
        string fresh = target + NewSuffix, old = target + OldSuffix;
        if (!Directory.Exists(target) && Directory.Exists(old))
        {
            // A swap was interrupted and nobody recovered (a run without --resume): keep the older whole folder
            // as TARGET until the new one is complete, so the state stays unambiguous.
            if (Directory.Exists(fresh)) Directory.Move(fresh, target);
            else Directory.Move(old, target);
        }
        DeleteIfExists(fresh);
        Directory.CreateDirectory(fresh);
        writeInto(fresh);
        DeleteIfExists(old);
        if (Directory.Exists(target)) Directory.Move(target, old);
        Directory.Move(fresh, target);
        DeleteIfExists(old);
    }

    /// <summary>Puts back the folder an interrupted <see cref="ReplaceDirectory"/> left whole and removes the
    /// rest. TARGET, when present, is whole (it is only ever a renamed complete TARGET.new). Without it,
    /// TARGET.old means the swap stopped between its renames: TARGET.new is then complete, and if it is missing
    /// TARGET.old is the last whole state. A TARGET.new alone may be half written and is dropped.
    /// Returns a line saying what was recovered, or null.</summary>
    public static string? RecoverDirectory(string target)
    {
        string fresh = target + NewSuffix, old = target + OldSuffix;
        string? recovered = null;
        if (!Directory.Exists(target) && Directory.Exists(old))
        {
            string whole = Directory.Exists(fresh) ? fresh : old;
            Directory.Move(whole, target);
            recovered = $"recovered {target} from {whole} (an interrupted save)";
        }
        DeleteIfExists(fresh);
        DeleteIfExists(old);
        return recovered;
    }

    /// <summary>Refuses to resume a run with other settings than it was started with: continuing with, say,
    /// another batch size or seed would silently train a different run than either set of flags describes.
    /// A state from before settings were stored (null) cannot be checked.</summary>
    public static void CheckSettings(string resumeDirectory, IReadOnlyDictionary<string, string>? saved,
        IReadOnlyDictionary<string, string> now)
    {
        if (saved is null) return;
        var changed = now.Keys.Union(saved.Keys)
            .Select(key => (key, before: saved.GetValueOrDefault(key, "unset"),
                after: now.GetValueOrDefault(key, "unset")))
            .Where(c => c.before != c.after)
            .Select(c => $"--{c.key} {c.before} -> {c.after}")
            .ToList();
        if (changed.Count > 0)
            throw new ArgumentException($"{resumeDirectory} was saved by a run with other settings "
                + $"({string.Join(", ", changed)}): resume with the original settings, or start over without --resume");
    }

    const string NewSuffix = ".new", OldSuffix = ".old";

    static void DeleteIfExists(string directory)
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
    }
}
