using System.Runtime.CompilerServices;

namespace EdgeBert.Kernels;

/// <summary>Element-wise activations on the given path (null: <see cref="IsaSelector.Default"/>).
/// Every method accepts the output being the same span as an input.</summary>
public static class Activations
{
    /// <summary>Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); x and y may alias.</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y, Isa? isa = null)
    {
        CheckOutput(x.Length, y.Length);
        ElementwiseLoop.Unary(default(GeluOp), x, y[..x.Length], isa);
    }

    /// <summary>dx = dy * (Phi(x) + x phi(x)), the derivative of exact GELU; dx may alias x or dy.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, Isa? isa = null)
    {
        if (dy.Length != x.Length) throw new ArgumentException("dy and x differ in length");
        CheckOutput(x.Length, dx.Length);
        ElementwiseLoop.Binary(default(GeluBackwardOp), x, dy, dx[..x.Length], isa);
    }

    /// <summary>Error function, absolute error below 1e-6 for every float.</summary>
    public static void Erf(ReadOnlySpan<float> x, Span<float> y, Isa? isa = null)
    {
        CheckOutput(x.Length, y.Length);
        ElementwiseLoop.Unary(default(ErfOp), x, y[..x.Length], isa);
    }

    /// <summary>Hyperbolic tangent with relative error near float precision, also for tiny |x|
    /// (TensorPrimitives.Tanh 10.0 is off by 0.5% at x = 1e-5).</summary>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y, Isa? isa = null)
    {
        CheckOutput(x.Length, y.Length);
        ElementwiseLoop.Unary(default(TanhOp), x, y[..x.Length], isa);
    }

    // The scalar forms are the references' own, so the tail of a vector path matches the scalar path.

    readonly struct TanhOp : IUnaryOperator
    {
        public TV Invoke<TV, S>(TV v) where TV : struct where S : struct, ISimd<TV>
        {
            var series = ActivationsReference.TanhSeries;
            var a = S.Abs(v);
            var x2 = S.Multiply(v, v);
            var poly = S.Splat(series[^1]);
            for (int c = series.Length - 2; c >= 0; c--) poly = S.MulAdd(poly, x2, S.Splat(series[c]));
            var small = S.Multiply(v, poly);
            var large = S.Subtract(S.Splat(1f), S.Divide(S.Splat(2f), S.Add(S.Exp(S.Add(a, a)), S.Splat(1f))));
            var isSmall = S.LessThan(a, S.Splat(ActivationsReference.TanhSeriesLimit));
            return S.Select(isSmall, small, S.CopySign(large, v));
        }

        public float Invoke(float x) => ActivationsReference.Tanh(x);
        public void Reference(ReadOnlySpan<float> x, Span<float> y) => ActivationsReference.Tanh(x, y);
    }

    readonly struct GeluOp : IUnaryOperator
    {
        public TV Invoke<TV, S>(TV v) where TV : struct where S : struct, ISimd<TV>
        {
            var erf = VectorErf<TV, S>(S.Multiply(v, S.Splat(ActivationsReference.InvSqrt2)));
            return S.Multiply(S.Multiply(S.Splat(0.5f), v), S.Add(S.Splat(1f), erf));
        }

        public float Invoke(float x) => ActivationsReference.Gelu(x);
        public void Reference(ReadOnlySpan<float> x, Span<float> y) => ActivationsReference.Gelu(x, y);
    }

    /// <summary>(x, dy) -> dx.</summary>
    readonly struct GeluBackwardOp : IBinaryOperator
    {
        public TV Invoke<TV, S>(TV v, TV dy) where TV : struct where S : struct, ISimd<TV>
        {
            var erf = VectorErf<TV, S>(S.Multiply(v, S.Splat(ActivationsReference.InvSqrt2)));
            var cdf = S.MulAdd(S.Splat(0.5f), erf, S.Splat(0.5f));
            var gauss = S.Exp(S.Multiply(S.Splat(-0.5f), S.Multiply(v, v)));
            var pdf = S.Multiply(S.Splat(ActivationsReference.InvSqrt2Pi), gauss);
            return S.Multiply(dy, S.MulAdd(v, pdf, cdf));
        }

        public float Invoke(float x, float dy) => ActivationsReference.GeluBackward(x, dy);
        public void Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) =>
            ActivationsReference.GeluBackward(x, dy, dx);
    }

    readonly struct ErfOp : IUnaryOperator
    {
        public TV Invoke<TV, S>(TV x) where TV : struct where S : struct, ISimd<TV> => VectorErf<TV, S>(x);
        public float Invoke(float x) => ActivationsReference.Erf(x);
        public void Reference(ReadOnlySpan<float> x, Span<float> y) => ActivationsReference.Erf(x, y);
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
