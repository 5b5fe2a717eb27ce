using System.Runtime.InteropServices;
using System.Text;

namespace EdgeBert.Model;

/// <summary>Reads untrusted text input with bounded memory: only from a regular file (a device such as /dev/zero
/// never ends, a FIFO blocks until someone writes) and one line at a time, each at most a given length.</summary>
public static partial class InputFile
{
    /// <summary>Throws IOException naming <paramref name="path"/> unless it is (a link to) a regular file.</summary>
    public static void RequireRegular(string path)
    {
        if (Directory.Exists(path)) throw new IOException($"{path}: is a directory, not a file");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found");
        // .NET reports no file type, so Linux asks the kernel (statx: one struct layout on every architecture).
        // Elsewhere the per-line limit still bounds memory on a device; a FIFO there would block.
        if (OperatingSystem.IsLinux() && LinuxFileType(path) is { } type && type != RegularFileType)
            throw new IOException($"{path}: {Describe(type)}, not a regular file");
    }

    /// <summary>The lines of <paramref name="path"/> (UTF-8; "\n" or "\r\n" ends a line). A line longer than
    /// <paramref name="maxLineChars"/> is an InvalidDataException naming its number, raised once the limit is
    /// passed, so at most that much of it is ever held.</summary>
    public static IEnumerable<string> ReadLines(string path, int maxLineChars)
    {
        RequireRegular(path);
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var line = new StringBuilder();
        var buffer = new char[1 << 14];
        int lineNumber = 1, read;
        while ((read = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != '\n') continue;
                Append(line, buffer.AsSpan(start, i - start), path, lineNumber, maxLineChars);
                yield return TakeLine(line);
                lineNumber++;
                start = i + 1;
            }
            Append(line, buffer.AsSpan(start, read - start), path, lineNumber, maxLineChars);
        }
        if (line.Length > 0) yield return TakeLine(line);
    }

    static void Append(StringBuilder line, ReadOnlySpan<char> chars, string path, int lineNumber, int max)
    {
        // One char of slack for the '\r' of a "\r\n" line ending, which TakeLine drops.
        if (line.Length + chars.Length > max + 1)
            throw new InvalidDataException($"{path} line {lineNumber}: longer than {max} characters");
        line.Append(chars);
    }

    static string TakeLine(StringBuilder line)
    {
        if (line.Length > 0 && line[^1] == '\r') line.Length--;
        string text = line.ToString();
        line.Clear();
        return text;
    }

    const int AtFdCwd = -100, StatxType = 0x1, FileTypeMask = 0xF000, RegularFileType = 0x8000;

    /// <summary>The S_IFMT bits of the file a path leads to (links followed), or null when statx is not available
    /// (a kernel before 4.11 or a C library without it), in which case the caller falls back to no check.</summary>
    static unsafe int? LinuxFileType(string path)
    {
        // struct statx is 256 bytes; stx_mode, a 16-bit field, is at offset 28.
        byte* statx = stackalloc byte[256];
        int result;
        try
        {
            result = Statx(AtFdCwd, path, 0, StatxType, statx);
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
        if (result != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == 38) return null; // ENOSYS
            throw new IOException($"{path}: cannot be examined (errno {errno})");
        }
        return *(ushort*)(statx + 28) & FileTypeMask;
    }

    static string Describe(int type) => type switch
    {
        0x1000 => "a FIFO",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        _ => "a special file",
    };

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);
}
