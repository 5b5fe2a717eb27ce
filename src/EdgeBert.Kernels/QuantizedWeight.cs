namespace EdgeBert.Kernels;

/// <summary>A linear layer's weight [out, in] in int8, symmetric, one scale per output feature (row of W):
/// scale[n] = max|W[n,:]| / 127 (1 for an all-zero row), q = clamp(round(W / scale), -127, 127), half to even.
/// Packed once, for one <see cref="Int8Path"/>, into that path's B panels: ceil(out / NR) panels of
/// ceil(in / 4) groups, each group NR columns of 4 consecutive k values (int16 for the AVX-512BW route),
/// zero-padded in k and in columns.</summary>
public sealed unsafe class QuantizedWeight : IDisposable
{
    readonly float[] _scales;
    readonly PanelMemory _memory;
    /// <summary>128 * sum_k q[n, k] per column, padded to whole panels; null unless the path shifts
    /// activations.</summary>
    readonly int[]? _shiftCorrection;

    /// <summary>The deepest product whose int32 sums cannot overflow on any path: the shifted-activation route
    /// sums up to 255 * 127 per k before its correction.</summary>
    public const int MaxInFeatures = int.MaxValue / (255 * 127);

    /// <summary>Rows of the weight (outputs of the layer).</summary>
    public int OutFeatures { get; }
    /// <summary>Columns of the weight (inputs of the layer).</summary>
    public int InFeatures { get; }
    /// <summary>The path the weight was packed for.</summary>
    public Int8Path Path { get; }
    /// <summary>One scale per output feature.</summary>
    public ReadOnlySpan<float> Scales => _scales;

    internal Int8MicroKernel Kernel { get; }
    /// <summary>InFeatures rounded up to a multiple of 4.</summary>
    internal int PaddedK { get; }
    internal long PanelBytes => (long)PaddedK * Kernel.NR * Kernel.ElementBytes;
    internal byte* Panels => (byte*)_memory.Start;
    internal int[]? ShiftCorrection => _shiftCorrection;

    QuantizedWeight(ReadOnlySpan<sbyte> values, float[] scales, int outFeatures, int inFeatures, Int8Path path)
    {
        if (!Int8Paths.IsSupported(path))
            throw new PlatformNotSupportedException($"INT8 path '{Int8Paths.Name(path)}' is not supported by this CPU");
        OutFeatures = outFeatures; InFeatures = inFeatures; Path = path; _scales = scales;
        Kernel = Int8MicroKernel.For(path);
        PaddedK = (inFeatures + 3) / 4 * 4;
        int nr = Kernel.NR, panels = (outFeatures + nr - 1) / nr;
        _memory = new PanelMemory((panels * PanelBytes + 3) / 4);
        byte* start = Panels;
        new Span<byte>(start, checked((int)(panels * PanelBytes))).Clear();
        for (int n = 0; n < outFeatures; n++)
            for (int k = 0; k < inFeatures; k++)
            {
                long offset = Offset(n, k);
                if (Kernel.ElementBytes == 2) *(short*)(start + offset) = values[n * inFeatures + k];
                else *(sbyte*)(start + offset) = values[n * inFeatures + k];
            }
        if (Kernel.ShiftedActivations)
        {
            _shiftCorrection = new int[panels * nr];
            for (int n = 0; n < outFeatures; n++)
            {
                int sum = 0;
                for (int k = 0; k < inFeatures; k++) sum += values[n * inFeatures + k];
                _shiftCorrection[n] = 128 * sum;
            }
        }
    }

    /// <summary>Quantizes weight [outFeatures, inFeatures] (row-major, as nn.Linear stores it) and packs it for path
    /// (default: <see cref="Int8Paths.Default"/>).</summary>
    public static QuantizedWeight FromLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures,
        Int8Path? path = null)
    {
        CheckShape(weight.Length, outFeatures, inFeatures, "weight");
        var values = new sbyte[weight.Length];
        var scales = new float[outFeatures];
        for (int n = 0; n < outFeatures; n++)
        {
            var row = weight.Slice(n * inFeatures, inFeatures);
            float maxAbs = 0f;
            foreach (float x in row) maxAbs = MathF.Max(maxAbs, MathF.Abs(x));
            scales[n] = Int8Quantization.Scale(maxAbs);
            for (int k = 0; k < inFeatures; k++)
                values[n * inFeatures + k] = Int8Quantization.Quantize(row[k], scales[n]);
        }
        return new QuantizedWeight(values, scales, outFeatures, inFeatures, path ?? Int8Paths.Default);
    }

    /// <summary>Packs already-quantized values [outFeatures, inFeatures] in [-127, 127] with their scales (a loaded
    /// checkpoint) for path (default: <see cref="Int8Paths.Default"/>).</summary>
    public static QuantizedWeight FromQuantized(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales,
        int outFeatures, int inFeatures, Int8Path? path = null)
    {
        CheckShape(values.Length, outFeatures, inFeatures, "values");
        if (scales.Length != outFeatures)
            throw new ArgumentException($"{scales.Length} scales for {outFeatures} output features");
        foreach (sbyte q in values)
            if (q == sbyte.MinValue) throw new ArgumentException("int8 weights are symmetric: -128 is not allowed");
        foreach (float s in scales)
            if (!float.IsFinite(s)) throw new ArgumentException($"scale {s} is not finite");
        return new QuantizedWeight(values, scales.ToArray(), outFeatures, inFeatures, path ?? Int8Paths.Default);
    }

    /// <summary>The int8 values [OutFeatures, InFeatures], row-major (for writing a checkpoint).</summary>
    public void CopyValuesTo(Span<sbyte> destination)
    {
        CheckShape(destination.Length, OutFeatures, InFeatures, "destination");
        byte* start = Panels;
        for (int n = 0; n < OutFeatures; n++)
            for (int k = 0; k < InFeatures; k++)
            {
                long offset = Offset(n, k);
                destination[n * InFeatures + k] = Kernel.ElementBytes == 2
                    ? (sbyte)*(short*)(start + offset)
                    : *(sbyte*)(start + offset);
            }
        GC.KeepAlive(this);
    }

    /// <summary>Frees the panels now rather than at finalization; a product started afterwards throws
    /// ObjectDisposedException. The caller makes sure no product with this weight is still running.</summary>
    public void Dispose() => _memory.Dispose();

    /// <summary>Byte offset of q[n, k] in the panels: panel, group of k, column in the panel, value in the
    /// group.</summary>
    long Offset(int n, int k)
    {
        int nr = Kernel.NR, perGroup = Kernel.KPerGroup;
        long group = k / perGroup;
        return n / nr * PanelBytes + (group * nr + n % nr) * 4 + k % perGroup * Kernel.ElementBytes;
    }

    static void CheckShape(int length, int outFeatures, int inFeatures, string name)
    {
        if (outFeatures <= 0 || inFeatures <= 0)
            throw new ArgumentException($"weight shape [{outFeatures}, {inFeatures}] must be positive");
        if (inFeatures > MaxInFeatures)
            throw new ArgumentException($"{inFeatures} input features exceed {MaxInFeatures}: int32 sums overflow");
        if (length != (long)outFeatures * inFeatures)
            throw new ArgumentException(
                $"{name} has {length} values, [{outFeatures}, {inFeatures}] needs {(long)outFeatures * inFeatures}");
    }
}
