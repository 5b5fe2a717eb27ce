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

    /// <summary>Writes a folder's new contents beside it, then swaps it in, so an interruption at any
    /// moment leaves either the old or the new folder, never a mix.</summary>
    public static void ReplaceDirectory(string target, Action<string> writeInto)
    {
        string temp = target + ".tmp", old = target + ".old";
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        Directory.CreateDirectory(temp);
        writeInto(temp);
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(target)) Directory.Move(target, old);
        Directory.Move(temp, target);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }
}
