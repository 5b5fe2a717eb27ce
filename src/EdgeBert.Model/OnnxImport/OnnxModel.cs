using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace EdgeBert.Model.OnnxImport;

/// <summary>A tensor of an ONNX graph (TensorProto): an initializer or a Constant node's value. Its data stays
/// in the file's bytes until asked for.</summary>
public sealed class OnnxTensor
{
    /// <summary>ONNX TensorProto data types the import reads.</summary>
    public const int Float = 1, Int32 = 6, Int64 = 7, Double = 11;

    /// <summary>The initializer's name.</summary>
    public required string Name { get; init; }
    /// <summary>The dimensions, outermost first.</summary>
    public required long[] Dims { get; init; }
    /// <summary>The TensorProto data type (see the constants).</summary>
    public required int DataType { get; init; }
    internal ReadOnlyMemory<byte> Raw { get; init; }
    internal float[]? FloatData { get; init; }
    internal long[]? IntData { get; init; }
    internal double[]? DoubleData { get; init; }
    internal bool External { get; init; }

    /// <summary>The number of values.</summary>
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>The values as floats (FLOAT or DOUBLE tensors), from raw_data or the typed field.</summary>
    public float[] Floats()
    {
        CheckInline();
        if (DataType == Float)
            return FloatData ?? Check(MemoryMarshal.Cast<byte, float>(Raw.Span).ToArray(), 4);
        if (DataType == Double)
            return (DoubleData ?? Check(MemoryMarshal.Cast<byte, double>(Raw.Span).ToArray(), 8))
                .Select(d => (float)d).ToArray();
        throw new InvalidDataException($"initializer '{Name}' has data type {DataType}, expected a float tensor");
    }

    /// <summary>The values as integers (INT64 or INT32 tensors).</summary>
    public long[] Ints()
    {
        CheckInline();
        if (IntData is not null) return IntData;
        if (DataType == Int64) return Check(MemoryMarshal.Cast<byte, long>(Raw.Span).ToArray(), 8);
        if (DataType == Int32) return Check(MemoryMarshal.Cast<byte, int>(Raw.Span).ToArray(), 4)
            .Select(i => (long)i).ToArray();
        throw new InvalidDataException($"tensor '{Name}' has data type {DataType}, expected an integer tensor");
    }

    void CheckInline()
    {
        if (External)
            throw new InvalidDataException($"initializer '{Name}' is stored in an external data file; "
                + "only self-contained .onnx files can be imported");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian host");
    }

    T[] Check<T>(T[] values, int size)
    {
        if (values.LongLength != Count || Raw.Length != Count * size)
            throw new InvalidDataException($"tensor '{Name}' holds {Raw.Length} bytes for shape "
                + $"[{string.Join(", ", Dims)}]");
        return values;
    }
}

/// <summary>A node attribute (AttributeProto): the kinds BERT graphs use.</summary>
public sealed record OnnxAttribute(string Name, float F, long I, long[] Ints, OnnxTensor? T);

/// <summary>A node of the graph (NodeProto). Lists are mutable so tests can break a graph on purpose.</summary>
public sealed class OnnxNode
{
    /// <summary>The node's name (may be empty).</summary>
    public string Name { get; set; } = "";
    /// <summary>The operator, e.g. MatMul.</summary>
    public string OpType { get; set; } = "";
    /// <summary>Names of the values the node reads.</summary>
    public List<string> Inputs { get; } = [];
    /// <summary>Names of the values the node writes.</summary>
    public List<string> Outputs { get; } = [];
    /// <summary>The node's attributes by name.</summary>
    public Dictionary<string, OnnxAttribute> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>The node's name for error messages (exports may leave it empty).</summary>
    public string Label => Name.Length > 0 ? $"{OpType} node '{Name}'" : $"{OpType} node writing '{Outputs[0]}'";
}

/// <summary>The main graph of an ONNX model (ModelProto.graph): nodes, initializers and input names.
/// Only the fields a BERT import needs are read; the rest are skipped.</summary>
public sealed class OnnxGraph
{
    /// <summary>The nodes in file order.</summary>
    public List<OnnxNode> Nodes { get; } = [];
    /// <summary>The initializers by name.</summary>
    public Dictionary<string, OnnxTensor> Initializers { get; } = new(StringComparer.Ordinal);
    /// <summary>Names of the graph's inputs.</summary>
    public List<string> Inputs { get; } = [];

    /// <summary>Reads an .onnx file (a regular file of at most 2 GB).</summary>
    public static OnnxGraph Load(string path)
    {
        // Protocol buffers cannot exceed 2 GB; the file is read only if it is a regular file of at most that.
        try { return Parse(ModelFiles.ReadBytes(path, int.MaxValue)); }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})");
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}");
        }
    }

    // Field numbers of onnx.proto: ModelProto.graph 7; GraphProto node 1, initializer 5, input 11,
    // sparse_initializer 15; ValueInfoProto.name 1; NodeProto input 1, output 2, name 3, op_type 4, attribute 5.
    /// <summary>Parses the bytes of a ModelProto.</summary>
    public static OnnxGraph Parse(byte[] bytes)
    {
        ReadOnlyMemory<byte>? graphBytes = null;
        foreach (var f in Fields(bytes))
            if (f.Number == 7) graphBytes = f.Body;
        if (graphBytes is not { } body) throw new InvalidDataException("the ONNX model has no graph");
        var graph = new OnnxGraph();
        foreach (var f in Fields(body))
        {
            switch (f.Number)
            {
                case 1: graph.Nodes.Add(ParseNode(f.Body)); break;
                case 5:
                    var t = ParseTensor(f.Body);
                    graph.Initializers[t.Name] = t;
                    break;
                case 11: graph.Inputs.Add(NameOf(f.Body)); break;
                case 15: throw new InvalidDataException("the graph has sparse initializers, which are not supported");
            }
        }
        return graph;
    }

    static string NameOf(ReadOnlyMemory<byte> valueInfo)
    {
        foreach (var f in Fields(valueInfo))
            if (f.Number == 1) return f.String;
        return "";
    }

    static OnnxNode ParseNode(ReadOnlyMemory<byte> bytes)
    {
        var node = new OnnxNode();
        foreach (var f in Fields(bytes))
        {
            switch (f.Number)
            {
                case 1: node.Inputs.Add(f.String); break;
                case 2: node.Outputs.Add(f.String); break;
                case 3: node.Name = f.String; break;
                case 4: node.OpType = f.String; break;
                case 5:
                    var a = ParseAttribute(f.Body);
                    node.Attributes[a.Name] = a;
                    break;
            }
        }
        if (node.Outputs.Count == 0) node.Outputs.Add("");
        return node;
    }

    // AttributeProto: name 1, f 2, i 3, t 5, ints 8.
    static OnnxAttribute ParseAttribute(ReadOnlyMemory<byte> bytes)
    {
        string name = "";
        float value = 0;
        long integer = 0;
        var ints = new List<long>();
        OnnxTensor? tensor = null;
        foreach (var f in Fields(bytes))
        {
            switch (f.Number)
            {
                case 1: name = f.String; break;
                case 2: value = f.Float; break;
                case 3: integer = f.Varint; break;
                case 5: tensor = ParseTensor(f.Body); break;
                case 8: f.AddInts(ints); break;
            }
        }
        return new OnnxAttribute(name, value, integer, ints.ToArray(), tensor);
    }

    // TensorProto: dims 1, data_type 2, float_data 4, int32_data 5, int64_data 7, name 8, raw_data 9,
    // double_data 10, external_data 13, data_location 14 (1 = EXTERNAL).
    static OnnxTensor ParseTensor(ReadOnlyMemory<byte> bytes)
    {
        var dims = new List<long>();
        var ints = new List<long>();
        var floats = new List<float>();
        var doubles = new List<double>();
        string name = "";
        int dataType = 0;
        bool external = false;
        ReadOnlyMemory<byte> raw = default;
        foreach (var f in Fields(bytes))
        {
            switch (f.Number)
            {
                case 1: f.AddInts(dims); break;
                case 2: dataType = (int)f.Varint; break;
                case 4: f.AddFloats(floats); break;
                case 5 or 7: f.AddInts(ints); break;
                case 8: name = f.String; break;
                case 9: raw = f.Body; break;
                case 10: f.AddDoubles(doubles); break;
                case 13: external = true; break;
                case 14: external |= f.Varint == 1; break;
            }
        }
        return new OnnxTensor
        {
            Name = name, Dims = dims.ToArray(), DataType = dataType, Raw = raw, External = external,
            FloatData = floats.Count > 0 ? floats.ToArray() : null,
            IntData = ints.Count > 0 ? ints.ToArray() : null,
            DoubleData = doubles.Count > 0 ? doubles.ToArray() : null,
        };
    }

    /// <summary>One field of a message: its number, and either its varint or fixed value, or its
    /// length-delimited body (a slice of the file, not a copy).</summary>
    readonly record struct Field(int Number, WireFormat.WireType Wire, long Varint, uint Fixed32, ulong Fixed64,
        ReadOnlyMemory<byte> Body)
    {
        public string String => System.Text.Encoding.UTF8.GetString(Body.Span);
        public float Float => BitConverter.UInt32BitsToSingle(Fixed32);

        // Repeated scalars come packed (one length-delimited body) or one field per value.
        public void AddInts(List<long> into)
        {
            if (Wire != WireFormat.WireType.LengthDelimited) { into.Add(Varint); return; }
            var input = Stream(Body);
            while (!input.IsAtEnd) into.Add(input.ReadInt64());
        }

        public void AddFloats(List<float> into)
        {
            if (Wire != WireFormat.WireType.LengthDelimited) { into.Add(Float); return; }
            for (int i = 0; i + 4 <= Body.Length; i += 4)
                into.Add(BinaryPrimitives.ReadSingleLittleEndian(Body.Span[i..]));
        }

        public void AddDoubles(List<double> into)
        {
            if (Wire != WireFormat.WireType.LengthDelimited)
            {
                into.Add(BitConverter.UInt64BitsToDouble(Fixed64));
                return;
            }
            for (int i = 0; i + 8 <= Body.Length; i += 8)
                into.Add(BinaryPrimitives.ReadDoubleLittleEndian(Body.Span[i..]));
        }
    }

    static CodedInputStream Stream(ReadOnlyMemory<byte> bytes)
    {
        if (!MemoryMarshal.TryGetArray(bytes, out var segment))
            throw new InvalidOperationException("ONNX bytes must come from an array");
        return new CodedInputStream(segment.Array!, segment.Offset, segment.Count);
    }

    static IEnumerable<Field> Fields(ReadOnlyMemory<byte> message)
    {
        var input = Stream(message);
        long origin = input.Position;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            int number = WireFormat.GetTagFieldNumber(tag);
            var wire = WireFormat.GetTagWireType(tag);
            switch (wire)
            {
                case WireFormat.WireType.Varint:
                    yield return new Field(number, wire, input.ReadInt64(), 0, 0, default);
                    break;
                case WireFormat.WireType.Fixed32:
                    yield return new Field(number, wire, 0, input.ReadFixed32(), 0, default);
                    break;
                case WireFormat.WireType.Fixed64:
                    yield return new Field(number, wire, 0, 0, input.ReadFixed64(), default);
                    break;
                case WireFormat.WireType.LengthDelimited:
                    // Skipping the field, then reading its length prefix, gives the body's place without a copy.
                    int start = (int)(input.Position - origin);
                    input.SkipLastField();
                    int end = (int)(input.Position - origin);
                    int length = Stream(message[start..end]).ReadLength();
                    yield return new Field(number, wire, 0, 0, 0, message[(end - length)..end]);
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }
    }
}
