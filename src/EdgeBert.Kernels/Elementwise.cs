using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>Vector arithmetic the engine and autograd need. Each method runs the given path
/// (null: <see cref="IsaSelector.Default"/>). Outputs may alias inputs exactly (same span), not partially.</summary>
public static class Elementwise
{
    /// <summary>y = a + b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, Isa? isa = null)
    {
        CheckSame(a.Length, b.Length);
        CheckOutput(a.Length, y.Length);
        ElementwiseLoop.Binary(default(AddOp), a, b, y[..a.Length], isa);
    }

    /// <summary>y += x (residual connections, gradient accumulation).</summary>
    public static void AddInPlace(Span<float> y, ReadOnlySpan<float> x, Isa? isa = null) => Add(y, x, y, isa);

    /// <summary>y = a * b element by element.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, Isa? isa = null)
    {
        CheckSame(a.Length, b.Length);
        CheckOutput(a.Length, y.Length);
        ElementwiseLoop.Binary(default(MultiplyOp), a, b, y[..a.Length], isa);
    }

    /// <summary>Adds bias (length cols) to every row of a row-major [rows, cols] matrix.</summary>
    public static void AddBias(Span<float> x, int rows, int cols, ReadOnlySpan<float> bias, Isa? isa = null)
    {
        CheckMatrix(x.Length, rows, cols);
        if (bias.Length != cols) throw new ArgumentException("bias length must equal cols");
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            Add(row, bias, row, isa);
        }
    }

    /// <summary>y = s * x.</summary>
    public static void Scale(ReadOnlySpan<float> x, float s, Span<float> y, Isa? isa = null)
    {
        CheckOutput(x.Length, y.Length);
        ElementwiseLoop.Unary(new ScaleOp(s), x, y[..x.Length], isa);
    }

    /// <summary>y += a * x.</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y, Isa? isa = null)
    {
        CheckOutput(x.Length, y.Length);
        y = y[..x.Length];
        ElementwiseLoop.Binary(new AxpyOp(a), x, y, y, isa);
    }

    /// <summary>Sum of a[i] * b[i].</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Isa? isa = null)
    {
        CheckSame(a.Length, b.Length);
        var work = new DotWork(a, b);
        IsaDispatch.Run(isa, ref work);
        return work.Sum;
    }

    /// <summary>sums[c] += sum over rows of x[r, c] (bias gradients).</summary>
    public static void AccumulateColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sums,
        Isa? isa = null)
    {
        CheckMatrix(x.Length, rows, cols);
        if (sums.Length != cols) throw new ArgumentException("sums length must equal cols");
        for (int r = 0; r < rows; r++) AddInPlace(sums, x.Slice(r * cols, cols), isa);
    }

    internal static float DotCore<TV, S>(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        where TV : struct where S : struct, ISimd<TV>
    {
        ref float ar = ref MemoryMarshal.GetReference(a);
        ref float br = ref MemoryMarshal.GetReference(b);
        TV sums0 = default, sums1 = default;
        int i = 0;
        // Two accumulators hide the FMA latency on the head_dim = 64 dots of attention.
        for (; i <= a.Length - 2 * S.Count; i += 2 * S.Count)
        {
            sums0 = S.MulAdd(S.Load(ref ar, i), S.Load(ref br, i), sums0);
            sums1 = S.MulAdd(S.Load(ref ar, i + S.Count), S.Load(ref br, i + S.Count), sums1);
        }
        for (; i <= a.Length - S.Count; i += S.Count) sums0 = S.MulAdd(S.Load(ref ar, i), S.Load(ref br, i), sums0);
        float sum = S.Sum(S.Add(sums0, sums1));
        for (; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>One <see cref="Dot"/> call, for <see cref="IsaDispatch"/>; it returns the sum.</summary>
    ref struct DotWork(ReadOnlySpan<float> a, ReadOnlySpan<float> b) : IIsaWork
    {
        readonly ReadOnlySpan<float> _a = a, _b = b;

        public float Sum { get; private set; }

        public void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV> => Sum = DotCore<TV, S>(_a, _b);
        public void RunScalar() => Sum = ElementwiseReference.Dot(_a, _b);
    }

    readonly struct AddOp : IBinaryOperator
    {
        public TV Invoke<TV, S>(TV a, TV b) where TV : struct where S : struct, ISimd<TV> => S.Add(a, b);
        public float Invoke(float a, float b) => a + b;
        public void Reference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) =>
            ElementwiseReference.Add(a, b, y);
    }

    readonly struct MultiplyOp : IBinaryOperator
    {
        public TV Invoke<TV, S>(TV a, TV b) where TV : struct where S : struct, ISimd<TV> => S.Multiply(a, b);
        public float Invoke(float a, float b) => a * b;
        public void Reference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) =>
            ElementwiseReference.Multiply(a, b, y);
    }

    readonly struct ScaleOp(float s) : IUnaryOperator
    {
        public TV Invoke<TV, S>(TV x) where TV : struct where S : struct, ISimd<TV> => S.Multiply(x, S.Splat(s));
        public float Invoke(float x) => x * s;
        public void Reference(ReadOnlySpan<float> x, Span<float> y) => ElementwiseReference.Scale(x, s, y);
    }

    /// <summary>(x, y) -> y + a * x; one fused multiply-add per vector. Axpy passes y as the result too,
    /// which is what its reference accumulates into.</summary>
    readonly struct AxpyOp(float a) : IBinaryOperator
    {
        public TV Invoke<TV, S>(TV x, TV y) where TV : struct where S : struct, ISimd<TV> =>
            S.MulAdd(S.Splat(a), x, y);
        public float Invoke(float x, float y) => y + a * x;
        public void Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> result) =>
            ElementwiseReference.Axpy(a, x, result);
    }

    static void CheckSame(int a, int b)
    {
        if (a != b) throw new ArgumentException("inputs differ in length");
    }

    static void CheckOutput(int inputLength, int outputLength)
    {
        if (outputLength < inputLength) throw new ArgumentException("output shorter than input");
    }

    static void CheckMatrix(int length, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (length < (long)rows * cols) throw new ArgumentException("span shorter than rows * cols");
    }
}
