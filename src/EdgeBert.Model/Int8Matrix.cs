using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>A matrix [rows, cols] in symmetric int8 with one scale per row: its values are q[r, c] * scale[r].
/// The INT8 engine runs its linear weights in this form, and the word embeddings are stored in it.</summary>
public sealed class Int8Matrix
{
    /// <summary>Rows (output features).</summary>
    public int Rows { get; }
    /// <summary>Columns (input features).</summary>
    public int Cols { get; }
    /// <summary>The int8 values [Rows, Cols], row-major, in [-127, 127].</summary>
    public sbyte[] Values { get; }
    /// <summary>One scale per row: a value is q * scale.</summary>
    public float[] Scales { get; }

    /// <summary>A matrix from its values and row scales (not copied).</summary>
    public Int8Matrix(sbyte[] values, float[] scales, int rows, int cols)
    {
        if (values.Length != (long)rows * cols)
            throw new ArgumentException($"{values.Length} values for [{rows}, {cols}]");
        if (scales.Length != rows) throw new ArgumentException($"{scales.Length} scales for {rows} rows");
        Values = values; Scales = scales; Rows = rows; Cols = cols;
    }

    /// <summary>Quantizes a float matrix with the INT8 kernels' rule (scale = max|row| / 127, round half to
    /// even).</summary>
    public static Int8Matrix Quantize(ReadOnlySpan<float> values, int rows, int cols)
    {
        var packed = QuantizedWeight.FromLinear(values, rows, cols);
        var q = new sbyte[(long)rows * cols];
        packed.CopyValuesTo(q);
        return new Int8Matrix(q, packed.Scales.ToArray(), rows, cols);
    }

    /// <summary>The matrix a parameter holds in int8: the form it was loaded in when its float values are still
    /// that form's (so a stored quantization is kept exactly), else a fresh quantization of the floats.</summary>
    public static Int8Matrix Of(Param p)
    {
        int rows = p.Shape[0], cols = p.Shape[1];
        return p.Int8 is { } stored && stored.Represents(p.Values) ? stored : Quantize(p.Values, rows, cols);
    }

    /// <summary>Writes q * scale of every value into <paramref name="destination"/>.</summary>
    public void Dequantize(Span<float> destination)
    {
        for (int r = 0; r < Rows; r++)
        {
            var row = Values.AsSpan(r * Cols, Cols);
            var into = destination.Slice(r * Cols, Cols);
            for (int c = 0; c < Cols; c++) into[c] = row[c] * Scales[r];
        }
    }

    /// <summary>q * scale of every value.</summary>
    public float[] Dequantize()
    {
        var values = new float[Values.Length];
        Dequantize(values);
        return values;
    }

    bool Represents(ReadOnlySpan<float> values)
    {
        if (values.Length != Values.Length) return false;
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Cols; c++)
                if (values[r * Cols + c] != Values[r * Cols + c] * Scales[r]) return false;
        return true;
    }
}
