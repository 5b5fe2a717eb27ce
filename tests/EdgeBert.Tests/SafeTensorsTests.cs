using System.Buffers.Binary;
using System.Text;
using EdgeBert.Model;

namespace EdgeBert.Tests;

public class SafeTensorsTests
{
    /// <summary>A file from a raw header and data bytes; the header length can be forged.</summary>
    static string Craft(ModelTestFiles.TempDir tmp, string header, byte[] data, ulong? headerLength = null)
    {
        string path = tmp.File("x.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void F16AndBF16BitPatternsDecodeToTheirValues()
    {
        using var tmp = new ModelTestFiles.TempDir();
        // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal); BF16: 1, -2.5, 0.15625, 3.140625.
        ushort[] f16 = [0x3C00, 0xC000, 0x7BFF, 0x0001];
        ushort[] bf16 = [0x3F80, 0xC020, 0x3E20, 0x4049];
        var data = f16.Concat(bf16).SelectMany(v => new[] { (byte)v, (byte)(v >> 8) }).ToArray();
        // An odd header length puts the data at odd file offsets.
        string path = Craft(tmp, "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[8,16]}} ", data);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal([1f, -2f, 65504f, MathF.Pow(2, -24)], f.ReadFloats("h"));
        Assert.Equal([1f, -2.5f, 0.15625f, 3.140625f], f.ReadFloats("b"));
        Assert.Equal([2, 2], f.Tensors["h"].Shape);
    }

    [Fact]
    public void WrittenFileReadsBackExactlyWithSortedNamesAndMetadata()
    {
        using var tmp = new ModelTestFiles.TempDir();
        var rng = new Random(5);
        var a = Enumerable.Range(0, 300).Select(_ => (float)rng.NextDouble() * 10 - 5).ToArray();
        var b = new[] { float.MaxValue, float.Epsilon, -0f, 1e-30f };
        string path = tmp.File("m.safetensors");
        File.WriteAllText(path, "old content");
        SafeTensors.Write(path, [("zeta", [3, 100], a), ("alpha", [4], b), ("empty", [0, 5], [])]);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(a, f.ReadFloats("zeta"));
        Assert.Equal(b, f.ReadFloats("alpha"));
        Assert.Empty(f.ReadFloats("empty"));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(["alpha", "empty", "zeta"],
            f.Tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.Name).Select(t => t.Name));
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(File.ReadAllBytes(path));
        Assert.Equal(0, headerLength % 8);
        Assert.Single(Directory.GetFiles(tmp.Path));
    }

    [Fact]
    public void F16StorageRoundsEachValueToNearestHalf()
    {
        using var tmp = new ModelTestFiles.TempDir();
        var rng = new Random(9);
        var a = Enumerable.Range(0, 1000).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
        string path = tmp.File("h.safetensors");
        SafeTensors.Write(path, [("a", [1000], a)], TensorStorage.F16);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal("F16", f.Tensors["a"].DType);
        var back = f.ReadFloats("a");
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(back[i] - a[i]) <= Math.Abs(a[i]) / 2048, $"{a[i]} stored as {back[i]}");
    }

    [Fact]
    public void HeaderLengthBeyondFileIsRejected()
    {
        using var tmp = new ModelTestFiles.TempDir();
        string path = Craft(tmp, "{}", [], headerLength: 1000);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("beyond the end", e.Message);
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path)).Message);
    }

    [Theory]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", "not valid JSON", null)]
    [InlineData("[1,2]", "not a JSON object", null)]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "out of range", "w")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,-4]}}", "out of range", "w")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12", "w")]
    [InlineData("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unknown dtype 'Q4'", "w")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", "shape entry", "w")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets", "w")]
    [InlineData("{\"v\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", "overlaps", "w")]
    public void BadHeadersNameTheFileAndTensor(string header, string what, string? tensor)
    {
        using var tmp = new ModelTestFiles.TempDir();
        string path = Craft(tmp, header, new byte[8]);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(what, e.Message);
        if (tensor is not null) Assert.Contains($"'{tensor}'", e.Message);
    }

    [Fact]
    public void IntegerTensorsAreValidatedButNotReadAsFloats()
    {
        using var tmp = new ModelTestFiles.TempDir();
        string path = Craft(tmp, "{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
        using var f = SafeTensorsFile.Open(path);
        Assert.Contains("ids", Assert.Throws<InvalidDataException>(() => f.ReadFloats("ids")).Message);
        Assert.Contains("'nope'", Assert.Throws<InvalidDataException>(() => f.ReadFloats("nope")).Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        Assert.Contains("/no/such.safetensors",
            Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open("/no/such.safetensors")).Message);
    }
}
