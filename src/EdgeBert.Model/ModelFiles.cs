using System.Text;

namespace EdgeBert.Model;

/// <summary>Opens the files of a model directory, which may come from anyone: only regular files are read, and
/// text files never past a size limit, so a name pointing at a FIFO, /dev/zero or a huge file can neither block
/// nor exhaust memory.</summary>
static class ModelFiles
{
    /// <summary>config.json and tokenizer_config.json of real models are a few KB, vocab.txt a few MB.</summary>
    public const long MaxJsonBytes = 16L << 20, MaxVocabBytes = 64L << 20;

    /// <summary>Opens <paramref name="path"/> for reading. The file type is checked before open() is called (on a
    /// FIFO it would block until a writer appears); where the OS cannot tell the type, FIFOs and devices are still
    /// refused by their size, which they report as 0.</summary>
    public static FileStream OpenRegular(string path, long maxBytes)
    {
        try { InputFile.RequireRegular(path); }
        catch (IOException e) when (e is not FileNotFoundException) { throw new InvalidDataException(e.Message); }
        var info = new FileInfo(path);
        // A symbolic link's own size is the length of its target's name: look at the target itself.
        if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
        if (!info.Exists) throw new FileNotFoundException($"{path}: file not found", path);
        if (info.Length == 0) throw new InvalidDataException($"{path}: file is empty or not a regular file");
        if (info.Length > maxBytes)
            throw new InvalidDataException($"{path}: file is larger than the {maxBytes >> 20} MB limit");
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        // The name may have been replaced between the check and the open.
        if (!stream.CanSeek || stream.Length == 0 || stream.Length > maxBytes)
        {
            stream.Dispose();
            throw new InvalidDataException($"{path}: file changed while opening, or is not a regular file");
        }
        return stream;
    }

    public static byte[] ReadBytes(string path, long maxBytes)
    {
        using var stream = OpenRegular(path, maxBytes);
        var bytes = new byte[stream.Length];
        try { stream.ReadExactly(bytes); }
        catch (EndOfStreamException) { throw new InvalidDataException($"{path}: file shrank while being read"); }
        return bytes;
    }

    /// <summary>Reads <paramref name="stream"/> to its end, refusing it once it passes <paramref name="maxBytes"/>
    /// (whatever length it claims), so an endless or huge stream cannot exhaust memory. <paramref name="name"/>
    /// stands for the stream in error messages.</summary>
    public static byte[] ReadBytes(Stream stream, long maxBytes, string name)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        for (int n; (n = stream.Read(chunk)) > 0;)
        {
            if (buffer.Length + n > maxBytes)
                throw new InvalidDataException($"{name}: larger than the {maxBytes >> 20} MB limit");
            buffer.Write(chunk, 0, n);
        }
        if (buffer.Length == 0) throw new InvalidDataException($"{name}: empty");
        return buffer.ToArray();
    }

    /// <summary>Text as <see cref="ReadText(string, long)"/> decodes it, from a stream read as
    /// <see cref="ReadBytes(Stream, long, string)"/> does.</summary>
    public static string ReadText(Stream stream, long maxBytes, string name) =>
        Decode(ReadBytes(stream, maxBytes, name));

    /// <summary>The text of a file as File.ReadAllText decodes it (UTF-8 unless a byte order mark says otherwise).
    /// </summary>
    public static string ReadText(string path, long maxBytes) => Decode(ReadBytes(path, maxBytes));

    static string Decode(byte[] bytes)
    {
        using var reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, true);
        return reader.ReadToEnd();
    }
}
