using EdgeBert.Kernels;

namespace EdgeBert.Model;

/// <summary>A linear layer of the inference engine, y = x W^T + b (W stored [out, in] as nn.Linear does),
/// with its weight packed once for the kernels. Each kind owns its precision, so the forward pass does
/// not change when a layer computes in another one.</summary>
internal abstract class LinearLayer : IDisposable
{
    public abstract int InFeatures { get; }
    public abstract int OutFeatures { get; }

    /// <summary>y[rows, OutFeatures] = epilogue((accumulate ? y : 0) + x[rows, InFeatures] W^T + b),
    /// both row-major and contiguous.</summary>
    public abstract void Forward(int rows, ReadOnlySpan<float> x, Span<float> y, bool accumulate,
        GemmEpilogue epilogue, WorkerPool pool);

    /// <summary>Frees the packed weight's memory.</summary>
    public abstract void Dispose();
}

/// <summary>A single-precision linear layer over the FP32 GEMM.</summary>
internal sealed class Fp32Linear(PackedWeight weight, float[] bias) : LinearLayer
{
    public override int InFeatures => weight.InFeatures;
    public override int OutFeatures => weight.OutFeatures;

    public static Fp32Linear Pack(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, float[] bias, Isa isa) =>
        new(PackedWeight.FromLinear(weight, outFeatures, inFeatures, isa), bias);

    public override void Forward(int rows, ReadOnlySpan<float> x, Span<float> y, bool accumulate,
        GemmEpilogue epilogue, WorkerPool pool) =>
        Gemm.Multiply(rows, x, InFeatures, weight, y, OutFeatures, accumulate, bias, epilogue, pool);

    public override void Dispose() => weight.Dispose();
}

/// <summary>An INT8 linear layer: int8 weights with one scale per output feature, activations quantized per
/// row at run time, the dequantization fused into the INT8 GEMM's store.</summary>
internal sealed class Int8Linear(QuantizedWeight weight, float[] bias, Isa isa) : LinearLayer
{
    public override int InFeatures => weight.InFeatures;
    public override int OutFeatures => weight.OutFeatures;

    /// <summary><paramref name="isa"/> is the path of the FP32 work in the epilogue (GELU).</summary>
    public static Int8Linear Pack(Int8Matrix weight, float[] bias, Int8Path path, Isa isa) =>
        new(QuantizedWeight.FromQuantized(weight.Values, weight.Scales, weight.Rows, weight.Cols, path), bias, isa);

    public override void Forward(int rows, ReadOnlySpan<float> x, Span<float> y, bool accumulate,
        GemmEpilogue epilogue, WorkerPool pool) =>
        Int8Gemm.Multiply(rows, x, InFeatures, weight, y, OutFeatures, accumulate, bias, epilogue, pool, isa);

    public override void Dispose() => weight.Dispose();
}
