using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>Element-wise activations, dispatched on <see cref="IsaSelector.Active"/>.
/// Every method accepts the output being the same span as an input.</summary>
public static class Activations
{
    /// <summary>Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); x and y may alias.</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        y = y[..x.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: GeluCore<Vector512<float>, Simd512>(x, y); break;
            case Isa.Avx2: GeluCore<Vector256<float>, Simd256>(x, y); break;
            case Isa.Vector128: GeluCore<Vector128<float>, Simd128>(x, y); break;
            default: ActivationsReference.Gelu(x, y); break;
        }
    }

    /// <summary>dx = dy * (Phi(x) + x phi(x)), the derivative of exact GELU; dx may alias x or dy.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length != x.Length) throw new ArgumentException("dy and x differ in length");
        CheckOutput(x.Length, dx.Length);
        dx = dx[..x.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: GeluBackwardCore<Vector512<float>, Simd512>(x, dy, dx); break;
            case Isa.Avx2: GeluBackwardCore<Vector256<float>, Simd256>(x, dy, dx); break;
            case Isa.Vector128: GeluBackwardCore<Vector128<float>, Simd128>(x, dy, dx); break;
            default: ActivationsReference.GeluBackward(x, dy, dx); break;
        }
    }

    /// <summary>Error function, absolute error below 1e-6 for every float.</summary>
    public static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        y = y[..x.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: ErfCore<Vector512<float>, Simd512>(x, y); break;
            case Isa.Avx2: ErfCore<Vector256<float>, Simd256>(x, y); break;
            case Isa.Vector128: ErfCore<Vector128<float>, Simd128>(x, y); break;
            default: ActivationsReference.Erf(x, y); break;
        }
    }

    /// <summary>Hyperbolic tangent with relative error near float precision, also for tiny |x|
    /// (TensorPrimitives.Tanh 10.0 is off by 0.5% at x = 1e-5).</summary>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckOutput(x.Length, y.Length);
        y = y[..x.Length];
        switch (IsaSelector.Active)
        {
            case Isa.Avx512: TanhCore<Vector512<float>, Simd512>(x, y); break;
            case Isa.Avx2: TanhCore<Vector256<float>, Simd256>(x, y); break;
            case Isa.Vector128: TanhCore<Vector128<float>, Simd128>(x, y); break;
            default: ActivationsReference.Tanh(x, y); break;
        }
    }

    static void TanhCore<TV, S>(ReadOnlySpan<float> x, Span<float> y) where TV : struct where S : struct, ISimd<TV>
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        var series = ActivationsReference.TanhSeries;
        int i = 0;
        for (; i <= x.Length - S.Count; i += S.Count)
        {
            var v = S.Load(ref xs, i);
            var a = S.Abs(v);
            var x2 = S.Multiply(v, v);
            var poly = S.Splat(series[^1]);
            for (int c = series.Length - 2; c >= 0; c--) poly = S.MulAdd(poly, x2, S.Splat(series[c]));
            var small = S.Multiply(v, poly);
            var large = S.Subtract(S.Splat(1f), S.Divide(S.Splat(2f), S.Add(S.Exp(S.Add(a, a)), S.Splat(1f))));
            S.Store(S.Select(S.LessThan(a, S.Splat(ActivationsReference.TanhSeriesLimit)), small, S.CopySign(large, v)), ref ys, i);
        }
        ActivationsReference.Tanh(x[i..], y[i..]);
    }

    static void GeluCore<TV, S>(ReadOnlySpan<float> x, Span<float> y) where TV : struct where S : struct, ISimd<TV>
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= x.Length - S.Count; i += S.Count)
        {
            var v = S.Load(ref xs, i);
            var erf = VectorErf<TV, S>(S.Multiply(v, S.Splat(ActivationsReference.InvSqrt2)));
            S.Store(S.Multiply(S.Multiply(S.Splat(0.5f), v), S.Add(S.Splat(1f), erf)), ref ys, i);
        }
        ActivationsReference.Gelu(x[i..], y[i..]);
    }

    static void GeluBackwardCore<TV, S>(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
        where TV : struct where S : struct, ISimd<TV>
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float dys = ref MemoryMarshal.GetReference(dy);
        ref float dxs = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        for (; i <= x.Length - S.Count; i += S.Count)
        {
            var v = S.Load(ref xs, i);
            var erf = VectorErf<TV, S>(S.Multiply(v, S.Splat(ActivationsReference.InvSqrt2)));
            var cdf = S.MulAdd(S.Splat(0.5f), erf, S.Splat(0.5f));
            var pdf = S.Multiply(S.Splat(ActivationsReference.InvSqrt2Pi), S.Exp(S.Multiply(S.Splat(-0.5f), S.Multiply(v, v))));
            S.Store(S.Multiply(S.Load(ref dys, i), S.MulAdd(v, pdf, cdf)), ref dxs, i);
        }
        ActivationsReference.GeluBackward(x[i..], dy[i..], dx[i..]);
    }

    static void ErfCore<TV, S>(ReadOnlySpan<float> x, Span<float> y) where TV : struct where S : struct, ISimd<TV>
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= x.Length - S.Count; i += S.Count)
            S.Store(VectorErf<TV, S>(S.Load(ref xs, i)), ref ys, i);
        ActivationsReference.Erf(x[i..], y[i..]);
    }

    /// <summary>The same approximation as <see cref="ActivationsReference.Erf(float)"/>, lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV VectorErf<TV, S>(TV x) where TV : struct where S : struct, ISimd<TV>
    {
        var a = S.Abs(x);
        var t = S.Divide(S.Splat(1f), S.MulAdd(S.Splat(ActivationsReference.ErfP), a, S.Splat(1f)));
        var poly = S.MulAdd(t, S.Splat(ActivationsReference.ErfA5), S.Splat(ActivationsReference.ErfA4));
        poly = S.MulAdd(t, poly, S.Splat(ActivationsReference.ErfA3));
        poly = S.MulAdd(t, poly, S.Splat(ActivationsReference.ErfA2));
        poly = S.MulAdd(t, poly, S.Splat(ActivationsReference.ErfA1));
        poly = S.Multiply(t, poly);
        var gauss = S.Exp(S.Multiply(S.Subtract(default, a), a));
        return S.CopySign(S.Subtract(S.Splat(1f), S.Multiply(poly, gauss)), x);
    }

    static void CheckOutput(int inputLength, int outputLength)
    {
        if (outputLength < inputLength) throw new ArgumentException("output shorter than input");
    }
}
