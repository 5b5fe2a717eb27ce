using System.Security.Cryptography;
using System.Text;

namespace EdgeBert.Model;

/// <summary>Writes a file so that a reader sees the old content or the complete new one, never a mix,
/// and so that a link planted in the directory cannot redirect the write.</summary>
public static class AtomicFile
{
    static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Runs <paramref name="write"/> on a new file with an unpredictable name beside
    /// <paramref name="path"/>, then renames it over <paramref name="path"/>. The temporary file is removed when
    /// <paramref name="write"/> throws (including an OperationCanceledException for Ctrl+C); only a killed
    /// process (SIGKILL) can leave it behind, under a name starting with a dot and ending in .tmp.</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        // Random (not pid or time) so no one can plant a link at the name in advance; CreateNew is
        // O_CREAT|O_EXCL, which fails on an existing name, a dangling symlink included, instead of following it.
        string temp = Path.Combine(directory,
            $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12))}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                // On disk before the rename, so a crash cannot leave a renamed but empty file.
                stream.Flush(flushToDisk: true);
            }
            // rename(2) replaces the directory entry: when the target is itself a symlink, the link is replaced
            // by the new file and whatever it pointed to is left untouched.
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>UTF-8 text without a byte-order mark.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, stream => stream.Write(Utf8.GetBytes(text)));
}
