namespace EdgeBert.Autograd;

/// <summary>A row-major float tensor with an optional gradient of the same length. Matrices are
/// [rows, cols]; a scalar (a loss) has shape [1]. Data is never rewritten by the op that produced it
/// after the forward pass: backward steps read it back.</summary>
public sealed class Tensor
{
    /// <summary>A tensor over <paramref name="data"/> (not copied) with the given shape.</summary>
    public Tensor(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (int d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d);
            count *= d;
        }
        if (count != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] needs {count} values, "
                + $"data has {data.Length}");
        Data = data;
        Shape = (int[])shape.Clone();
    }

    /// <summary>A tensor of zeros with the given shape.</summary>
    public static Tensor Zeros(params int[] shape)
    {
        long count = 1;
        foreach (int d in shape) count *= d;
        return new Tensor(new float[count], shape);
    }

    /// <summary>A trainable leaf (RequiresGrad = true).</summary>
    public static Tensor Parameter(string name, float[] data, params int[] shape) =>
        new(data, shape) { Name = name, RequiresGrad = true };

    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>The values, row-major.</summary>
    public float[] Data { get; }

    /// <summary>dL/dData, allocated on first accumulation (null: nothing flowed here yet).</summary>
    public float[]? Grad { get; private set; }

    /// <summary>Whether backward passes accumulate a gradient for this tensor.</summary>
    public bool RequiresGrad { get; set; }
    /// <summary>A name for error messages and checkpoints, or null.</summary>
    public string? Name { get; set; }

    /// <summary>The number of values.</summary>
    public int Length => Data.Length;

    /// <summary>Size of the first dimension.</summary>
    public int Rows => Shape.Length == 0 ? 1 : Shape[0];

    /// <summary>Product of the dimensions after the first (the row length of a matrix).</summary>
    public int Cols => Rows == 0 ? 0 : Length / Rows;

    /// <summary>The gradient buffer, allocated (zeroed) if needed.</summary>
    public float[] EnsureGrad() => Grad ??= Arena?.Rent(Data.Length, clear: true) ?? new float[Data.Length];

    /// <summary>Where the gradient of a tensor made by a tape on an arena comes from.</summary>
    internal TensorArena? Arena { get; init; }

    /// <summary>Zeroes the gradient in place (keeps the buffer for the next step).</summary>
    public void ZeroGrad() => Grad?.AsSpan().Clear();

    /// <summary>Drops the gradient buffer.</summary>
    public void ClearGrad() => Grad = null;

    /// <summary>The name and shape.</summary>
    public override string ToString() => $"{Name ?? "tensor"}[{string.Join(", ", Shape)}]";
}
