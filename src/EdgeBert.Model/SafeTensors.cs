using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace EdgeBert.Model;

/// <summary>One tensor entry of a safetensors header. Begin/End count bytes from the start
/// of the data section.</summary>
public sealed record SafeTensorInfo(string Name, string DType, int[] Shape, long Begin, long End)
{
    /// <summary>The number of values.</summary>
    public long ElementCount => SafeTensors.Product(Shape);
}

/// <summary>How a checkpoint stores its tensors: all in F32 or F16, or (Int8, Int8F16) the parameters INT8
/// precision runs in int8 as I8 with F32 scales (see <see cref="BertWeights.IsInt8"/>) and the rest in F32 or F16.
/// </summary>
public enum TensorStorage
{
    /// <summary>Every tensor as F32.</summary>
    F32,
    /// <summary>Every tensor as F16 (half the size; inference reads it back as F32).</summary>
    F16,
    /// <summary>The INT8 parameters as I8 with F32 scales, the rest as F32.</summary>
    Int8,
    /// <summary>The INT8 parameters as I8 with F32 scales, the rest as F16 (the smallest form).</summary>
    Int8F16,
}

/// <summary>Reader for the safetensors format: u64 LE header length N, N bytes of JSON
/// {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {...}}, then the data.
/// The header is validated completely on open; tensors are read one at a time on request, so a
/// caller never holds the whole file in memory.</summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>safetensors itself refuses headers above 100 MB; a larger value means a corrupt file.</summary>
    const long MaxHeaderBytes = 100L << 20;
    const int MaxNameLength = 1000;

    readonly Stream _stream;
    readonly long _dataStart;
    readonly Dictionary<string, SafeTensorInfo> _tensors;

    /// <summary>The file's path, or the name a stream was given.</summary>
    public string Path { get; }
    /// <summary>The header's tensors by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => _tensors;
    /// <summary>The header's __metadata__.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafeTensorsFile(string path, Stream stream, long dataStart, Dictionary<string, SafeTensorInfo> tensors,
                    Dictionary<string, string> metadata)
    {
        Path = path;
        _stream = stream;
        _dataStart = dataStart;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Opens a file (a regular file only) and validates its header.</summary>
    public static SafeTensorsFile Open(string path) => Open(ModelFiles.OpenRegular(path, long.MaxValue), path);

    /// <summary>Reads the safetensors data that starts at <paramref name="stream"/>'s position and runs to its end;
    /// <paramref name="name"/> stands for it in error messages. The file takes ownership of the stream. A stream
    /// that cannot seek is copied into memory first, at most 2 GB of it.</summary>
    public static SafeTensorsFile Open(Stream stream, string name)
    {
        try
        {
            if (!stream.CanSeek)
            {
                var copy = new MemoryStream(ModelFiles.ReadBytes(stream, Array.MaxLength, name), writable: false);
                stream.Dispose();
                stream = copy;
            }
            long start = stream.Position, fileLength = stream.Length - start;
            if (fileLength < 8) throw Bad(name, $"file is {fileLength} bytes, too short for the 8-byte header length");
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            // The value comes from foreign bytes (another file renamed, say): saying it would print those bytes.
            if (headerLength > (ulong)(fileLength - 8))
                throw Bad(name, $"header length field goes beyond the end of the file ({fileLength} bytes)");
            if ((long)headerLength > MaxHeaderBytes)
                throw Bad(name, "header length field is above the 100 MB limit");
            var header = new byte[headerLength];
            stream.ReadExactly(header);
            long dataStart = start + 8 + (long)headerLength;
            var (tensors, metadata) = ParseHeader(name, header, fileLength - 8 - (long)headerLength);
            return new SafeTensorsFile(name, stream, dataStart, tensors, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header,
        long dataLength)
    {
        // The JSON reader accepts invalid UTF-8 inside strings and fails only when a name is read.
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Bad(path, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e)
        {
            // Not e.Message: it quotes the offending byte, which may be anything.
            throw Bad(path, $"header is not valid JSON (error at byte {e.BytePositionInLine} of line {e.LineNumber})");
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "header is not a JSON object");

        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad(path, "__metadata__ is not an object");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String)
                        throw Bad(path, Printable(m.Name) ? $"__metadata__ value '{m.Name}' is not a string"
                            : "a __metadata__ value is not a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            if (tensors.ContainsKey(prop.Name)) throw Bad(path, $"tensor '{prop.Name}' appears twice in the header");
            tensors[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
        }

        // As safetensors requires, the tensors tile the data section: sorted by offset, each begins where the
        // previous one ends, the first at 0 and the last at the end of the file. Otherwise a header length off
        // by a few bytes (the header ends in padding spaces) would parse and shift every tensor.
        long cursor = 0;
        foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin != cursor)
                throw Bad(path, t.Begin > cursor
                    ? $"tensor '{t.Name}' begins at byte {t.Begin} of the data section, leaving a gap after {cursor}"
                    : $"tensor '{t.Name}' [{t.Begin}, {t.End}) overlaps the tensor before it, ending at {cursor}");
            cursor = t.End;
        }
        if (cursor != dataLength)
            throw Bad(path, $"the tensors end at byte {cursor} of the data section, but it is {dataLength} bytes "
                + "(trailing bytes or a wrong header length)");
        return (tensors, metadata);
    }

    static SafeTensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        // Names end up in one-line error messages; real ones are short and printable.
        if (!Printable(name))
            throw Bad(path, $"a tensor name is longer than {MaxNameLength} characters or holds control characters");
        if (e.ValueKind != JsonValueKind.Object) throw Bad(path, $"tensor '{name}': entry is not an object");
        if (!e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw Bad(path, $"tensor '{name}': missing or non-string 'dtype'");
        string dtype = dtypeEl.GetString()!;
        int elementSize = SafeTensors.ElementSize(dtype);
        if (elementSize == 0) throw Bad(path, $"tensor '{name}': unknown dtype '{dtype}'");

        if (!e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"tensor '{name}': missing or non-array 'shape'");
        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw Bad(path, $"tensor '{name}': shape entry {i} is not a non-negative 32-bit integer");
            shape[i++] = dim;
        }

        if (!e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array
            || offEl.GetArrayLength() != 2)
            throw Bad(path, $"tensor '{name}': 'data_offsets' must be an array [begin, end]");
        if (offEl[0].ValueKind != JsonValueKind.Number || offEl[1].ValueKind != JsonValueKind.Number
            || !offEl[0].TryGetInt64(out long begin) || !offEl[1].TryGetInt64(out long end))
            throw Bad(path, $"tensor '{name}': data_offsets are not integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad(path,
                $"tensor '{name}': data_offsets [{begin}, {end}) out of range (data section is {dataLength} bytes)");

        long count;
        try { count = checked(SafeTensors.Product(shape) * elementSize); }
        catch (OverflowException)
        {
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] is too large");
        }
        if (end - begin != count)
            throw Bad(path,
                $"tensor '{name}': data_offsets span {end - begin} bytes but {dtype} "
                + $"[{string.Join(", ", shape)}] needs {count}");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    static bool Printable(string name) => name.Length <= MaxNameLength && !name.Any(char.IsControl);

    static InvalidDataException Bad(string path, string what) => new($"{path}: {what}");

    /// <summary>Whether the file has a tensor of this name.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Reads one tensor converted to float (F32, F16, BF16, F64 stored).</summary>
    public float[] ReadFloats(string name)
    {
        var info = Info(name);
        var result = new float[checked((int)info.ElementCount)];
        ReadFloats(info, result);
        return result;
    }

    /// <summary>Reads one tensor into <paramref name="destination"/>, whose length must
    /// equal the element count.</summary>
    public void ReadFloats(string name, Span<float> destination) => ReadFloats(Info(name), destination);

    /// <summary>Reads an I8 tensor into <paramref name="destination"/>, whose length must
    /// equal the element count.</summary>
    public void ReadInt8(string name, Span<sbyte> destination)
    {
        var info = Info(name);
        if (info.DType != "I8")
            throw new InvalidDataException($"{Path}: tensor '{name}' has dtype {info.DType}, not I8");
        if (destination.Length != info.ElementCount)
            throw new ArgumentException(
                $"{Path}: tensor '{name}' has {info.ElementCount} elements, destination {destination.Length}");
        ReadExactlyAt(_dataStart + info.Begin, MemoryMarshal.AsBytes(destination), info);
    }

    SafeTensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var info) ? info
            : throw new InvalidDataException($"{Path}: no tensor named '{name}'");

    void ReadFloats(SafeTensorInfo info, Span<float> destination)
    {
        if (destination.Length != info.ElementCount)
            throw new ArgumentException($"{Path}: tensor '{info.Name}' has {info.ElementCount} elements, "
                + $"destination {destination.Length}");
        long offset = _dataStart + info.Begin;
        if (info.DType == "F32" && BitConverter.IsLittleEndian)
        {
            // Straight into the destination: no second copy of the tensor.
            ReadExactlyAt(offset, MemoryMarshal.AsBytes(destination), info);
            return;
        }
        int size = SafeTensors.ElementSize(info.DType);
        if (info.DType is not ("F32" or "F16" or "BF16" or "F64"))
            throw new InvalidDataException($"{Path}: tensor '{info.Name}' has dtype {info.DType}; only F32, F16, "
                + "BF16 and F64 can be read as floats");
        const int ChunkElements = 1 << 16;
        var chunk = new byte[ChunkElements * size];
        for (int done = 0; done < destination.Length;)
        {
            int n = Math.Min(ChunkElements, destination.Length - done);
            var bytes = chunk.AsSpan(0, n * size);
            ReadExactlyAt(offset + (long)done * size, bytes, info);
            SafeTensors.ConvertToFloat(info.DType, bytes, destination.Slice(done, n));
            done += n;
        }
    }

    void ReadExactlyAt(long offset, Span<byte> buffer, SafeTensorInfo info)
    {
        _stream.Position = offset;
        if (_stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length)
            throw new InvalidDataException($"{Path}: file ended while reading tensor '{info.Name}'");
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();
}

/// <summary>Dtype facts and the safetensors writer.</summary>
public static class SafeTensors
{
    /// <summary>Bytes per element of a safetensors dtype, 0 if the dtype is unknown.</summary>
    public static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "F8_E4M3" or "F8_E5M2" or "I8" or "U8" or "BOOL" => 1,
        _ => 0,
    };

    internal static long Product(int[] shape)
    {
        long p = 1;
        foreach (int d in shape) p = checked(p * d);
        return p;
    }

    internal static void ConvertToFloat(string dtype, ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        switch (dtype)
        {
            case "F32":
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
                break;
            case "F16":
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                break;
            case "BF16":
                // bfloat16 is the upper half of a float32.
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = BitConverter.Int32BitsToSingle(
                        BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                break;
            case "F64":
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes[(8 * i)..]);
                break;
            default:
                throw new InvalidDataException($"dtype {dtype} cannot be converted to float");
        }
    }

    /// <summary>Writes float tensors, all stored as <paramref name="storage"/>; see the general overload.</summary>
    public static void Write(string path, IEnumerable<(string Name, int[] Shape, float[] Data)> tensors,
                             TensorStorage storage = TensorStorage.F32) =>
        Write(path, tensors.Select(t => storage switch
        {
            TensorStorage.F32 => StoredTensor.F32(t.Name, t.Shape, t.Data),
            TensorStorage.F16 => StoredTensor.F16(t.Name, t.Shape, t.Data),
            _ => throw new ArgumentException("int8 storage needs the quantized tensors (BertCheckpoint.Save)"),
        }));

    /// <summary>Writes tensors (names sorted, `__metadata__` {"format": "pt"}) to a temporary file beside
    /// <paramref name="path"/>, then renames it, so a failure never leaves a half-written file
    /// under the real name.</summary>
    public static void Write(string path, IEnumerable<StoredTensor> tensors)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var headerBuffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(headerBuffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString("format", "pt");
            w.WriteEndObject();
            long offset = 0;
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var t in list)
            {
                if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' given twice");
                if (Product(t.Shape) != t.Count)
                    throw new ArgumentException(
                        $"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] does not match {t.Count} values");
                long bytes = t.Count * ElementSize(t.DType);
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType);
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data section starts aligned, as safetensors does.
        while (headerBuffer.Length % 8 != 0) headerBuffer.WriteByte((byte)' ');

        AtomicFile.Write(path, file =>
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)headerBuffer.Length);
            file.Write(lengthBytes);
            headerBuffer.Position = 0;
            headerBuffer.CopyTo(file);
            var chunk = new byte[1 << 16];
            foreach (var t in list) WriteData(file, t, chunk);
        });
    }

    static void WriteData(FileStream file, StoredTensor t, byte[] chunk)
    {
        if (t.Int8 is { } int8)
        {
            file.Write(MemoryMarshal.AsBytes(int8.AsSpan()));
            return;
        }
        var data = t.Floats!;
        int size = ElementSize(t.DType);
        for (int done = 0; done < data.Length;)
        {
            int n = Math.Min(chunk.Length / size, data.Length - done);
            for (int i = 0; i < n; i++)
            {
                if (size == 4) BinaryPrimitives.WriteSingleLittleEndian(chunk.AsSpan(4 * i), data[done + i]);
                else BinaryPrimitives.WriteHalfLittleEndian(chunk.AsSpan(2 * i), (Half)data[done + i]);
            }
            file.Write(chunk, 0, n * size);
            done += n;
        }
    }
}

/// <summary>A tensor to write: floats stored as F32 or F16, or int8 values stored as I8.</summary>
public sealed class StoredTensor
{
    /// <summary>The tensor's name.</summary>
    public string Name { get; }
    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>The safetensors dtype it is written as.</summary>
    public string DType { get; }
    internal float[]? Floats { get; }
    internal sbyte[]? Int8 { get; }
    internal long Count => Floats?.Length ?? Int8!.Length;

    StoredTensor(string name, int[] shape, string dtype, float[]? floats, sbyte[]? int8)
    {
        Name = name; Shape = shape; DType = dtype; Floats = floats; Int8 = int8;
    }

    /// <summary>Floats written as F32.</summary>
    public static StoredTensor F32(string name, int[] shape, float[] data) => new(name, shape, "F32", data, null);
    /// <summary>Floats written as F16.</summary>
    public static StoredTensor F16(string name, int[] shape, float[] data) => new(name, shape, "F16", data, null);
    /// <summary>int8 values written as I8.</summary>
    public static StoredTensor I8(string name, int[] shape, sbyte[] data) => new(name, shape, "I8", null, data);
}
