namespace EdgeBert.Kernels;

/// <summary>The readable twin of <see cref="Int8Gemm"/>: the same quantization and float operations in plain loops
/// over the unpacked int8 weight, so its output has the same bits.</summary>
internal static class Int8GemmReference
{
    public static void Multiply(int m, ReadOnlySpan<float> a, int lda, QuantizedWeight w, Span<float> c, int ldc,
        bool accumulate = false, ReadOnlySpan<float> bias = default, GemmEpilogue epilogue = GemmEpilogue.None)
    {
        int n = w.OutFeatures, k = w.InFeatures;
        var weight = new sbyte[n * k];
        w.CopyValuesTo(weight);
        var qa = new sbyte[k];
        for (int i = 0; i < m; i++)
        {
            var x = a.Slice(i * lda, k);
            float maxAbs = 0f;
            foreach (float v in x) maxAbs = MathF.Max(maxAbs, MathF.Abs(v));
            float rowScale = Int8Quantization.Scale(maxAbs);
            for (int p = 0; p < k; p++) qa[p] = Int8Quantization.Quantize(x[p], rowScale);
            var row = c.Slice(i * ldc, n);
            for (int j = 0; j < n; j++)
            {
                int acc = 0;
                for (int p = 0; p < k; p++) acc += qa[p] * weight[j * k + p];
                float v = acc * (rowScale * w.Scales[j]);
                if (accumulate) v += row[j];
                if (!bias.IsEmpty) v += bias[j];
                row[j] = v;
            }
            if (epilogue == GemmEpilogue.Gelu) Activations.Gelu(row, row);
        }
    }
}
