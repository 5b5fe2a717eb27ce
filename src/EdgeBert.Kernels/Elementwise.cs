using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>Vector arithmetic the engine and autograd need, dispatched on <see cref="IsaSelector.Active"/>.
/// Outputs may alias inputs exactly (same span), not partially.</summary>
public static class Elementwise
{
    /// <summary>y = a + b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        CheckSame(a.Length, b.Length);
        CheckOutput(a.Length, y.Length);
        y = y[..a.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: AddCore<Vector512<float>, Simd512>(a, b, y); break;
            case Isa.Avx2: AddCore<Vector256<float>, Simd256>(a, b, y); break;
            case Isa.Vector128: AddCore<Vector128<float>, Simd128>(a, b, y); break;
            default: ElementwiseReference.Add(a, b, y); break;
        }
    }

    /// <summary>y += x (residual connections, gradient accumulation).</summary>
    public static void AddInPlace(Span<float> y, ReadOnlySpan<float> x) => Add(y, x, y);

    /// <summary>y = a * b element by element.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        CheckSame(a.Length, b.Length);
        CheckOutput(a.Length, y.Length);
        y = y[..a.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: MultiplyCore<Vector512<float>, Simd512>(a, b, y); break;
            case Isa.Avx2: MultiplyCore<Vector256<float>, Simd256>(a, b, y); break;
            case Isa.Vector128: MultiplyCore<Vector128<float>, Simd128>(a, b, y); break;
            default: ElementwiseReference.Multiply(a, b, y); break;
        }
    }

    /// <summary>Adds bias (length cols) to every row of a row-major [rows, cols] matrix.</summary>
    public static void AddBias(Span<float> x, int rows, int cols, ReadOnlySpan<float> bias)
    {
        CheckMatrix(x.Length, rows, cols);
        if (bias.Length != cols) throw new ArgumentException("bias length must equal cols");
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            Add(row, bias, row);
        }
    }

    /// <summary>y = s * x.</summary>
    public static void Scale(ReadOnlySpan<float> x, float s, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        y = y[..x.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: ScaleCore<Vector512<float>, Simd512>(x, s, y); break;
            case Isa.Avx2: ScaleCore<Vector256<float>, Simd256>(x, s, y); break;
            case Isa.Vector128: ScaleCore<Vector128<float>, Simd128>(x, s, y); break;
            default: ElementwiseReference.Scale(x, s, y); break;
        }
    }

    /// <summary>y += a * x.</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        y = y[..x.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: AxpyCore<Vector512<float>, Simd512>(a, x, y); break;
            case Isa.Avx2: AxpyCore<Vector256<float>, Simd256>(a, x, y); break;
            case Isa.Vector128: AxpyCore<Vector128<float>, Simd128>(a, x, y); break;
            default: ElementwiseReference.Axpy(a, x, y); break;
        }
    }

    /// <summary>Sum of a[i] * b[i].</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        CheckSame(a.Length, b.Length);
        return IsaSelector.Active switch
        {
            Isa.Avx512 => DotCore<Vector512<float>, Simd512>(a, b),
            Isa.Avx2 => DotCore<Vector256<float>, Simd256>(a, b),
            Isa.Vector128 => DotCore<Vector128<float>, Simd128>(a, b),
            _ => ElementwiseReference.Dot(a, b),
        };
    }

    /// <summary>sums[c] += sum over rows of x[r, c] (bias gradients).</summary>
    public static void AccumulateColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sums)
    {
        CheckMatrix(x.Length, rows, cols);
        if (sums.Length != cols) throw new ArgumentException("sums length must equal cols");
        for (int r = 0; r < rows; r++) AddInPlace(sums, x.Slice(r * cols, cols));
    }

    internal static void AddCore<TV, S>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
        where TV : struct where S : struct, ISimd<TV>
    {
        ref float ar = ref MemoryMarshal.GetReference(a);
        ref float br = ref MemoryMarshal.GetReference(b);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= a.Length - S.Count; i += S.Count) S.Store(S.Add(S.Load(ref ar, i), S.Load(ref br, i)), ref yr, i);
        for (; i < a.Length; i++) y[i] = a[i] + b[i];
    }

    static void MultiplyCore<TV, S>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
        where TV : struct where S : struct, ISimd<TV>
    {
        ref float ar = ref MemoryMarshal.GetReference(a);
        ref float br = ref MemoryMarshal.GetReference(b);
        ref float yr = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= a.Length - S.Count; i += S.Count) S.Store(S.Multiply(S.Load(ref ar, i), S.Load(ref br, i)), ref yr, i);
        for (; i < a.Length; i++) y[i] = a[i] * b[i];
    }

    static void ScaleCore<TV, S>(ReadOnlySpan<float> x, float s, Span<float> y) where TV : struct where S : struct, ISimd<TV>
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        var sv = S.Splat(s);
        int i = 0;
        for (; i <= x.Length - S.Count; i += S.Count) S.Store(S.Multiply(S.Load(ref xr, i), sv), ref yr, i);
        for (; i < x.Length; i++) y[i] = x[i] * s;
    }

    internal static void AxpyCore<TV, S>(float a, ReadOnlySpan<float> x, Span<float> y) where TV : struct where S : struct, ISimd<TV>
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        var av = S.Splat(a);
        int i = 0;
        for (; i <= x.Length - S.Count; i += S.Count) S.Store(S.MulAdd(av, S.Load(ref xr, i), S.Load(ref yr, i)), ref yr, i);
        for (; i < x.Length; i++) y[i] += a * x[i];
    }

    internal static float DotCore<TV, S>(ReadOnlySpan<float> a, ReadOnlySpan<float> b) where TV : struct where S : struct, ISimd<TV>
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
