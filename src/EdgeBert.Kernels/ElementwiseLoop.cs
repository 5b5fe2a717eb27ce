using System.Runtime.InteropServices;

namespace EdgeBert.Kernels;

/// <summary>The math of an element-wise op y = f(x): its vector form, its scalar form (for the tail after the
/// last whole vector) and its readable reference twin (the <see cref="Isa.Scalar"/> path). A struct, so the JIT
/// inlines it into <see cref="ElementwiseLoop"/>; a parameter such as a scale factor is a field.</summary>
internal interface IUnaryOperator
{
    TV Invoke<TV, S>(TV x) where TV : struct where S : struct, ISimd<TV>;
    float Invoke(float x);
    void Reference(ReadOnlySpan<float> x, Span<float> y);
}

/// <summary>The math of an element-wise op y = f(a, b), in the same three forms as <see cref="IUnaryOperator"/>.
/// </summary>
internal interface IBinaryOperator
{
    TV Invoke<TV, S>(TV a, TV b) where TV : struct where S : struct, ISimd<TV>;
    float Invoke(float a, float b);
    void Reference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y);
}

/// <summary>The loop mechanics every element-wise kernel shares: whole vectors, then a scalar tail.
/// Callers check lengths; y may be the same span as an input.</summary>
internal static class ElementwiseLoop
{
    public static void Unary<TOp>(TOp op, ReadOnlySpan<float> x, Span<float> y, Isa? isa)
        where TOp : struct, IUnaryOperator
    {
        var work = new UnaryWork<TOp>(op, x, y);
        IsaDispatch.Run(isa, ref work);
    }

    public static void Binary<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, Isa? isa)
        where TOp : struct, IBinaryOperator
    {
        var work = new BinaryWork<TOp>(op, a, b, y);
        IsaDispatch.Run(isa, ref work);
    }

    ref struct UnaryWork<TOp>(TOp op, ReadOnlySpan<float> x, Span<float> y) : IIsaWork
        where TOp : struct, IUnaryOperator
    {
        TOp _op = op;
        readonly ReadOnlySpan<float> _x = x;
        readonly Span<float> _y = y;

        public void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV>
        {
            ref float xs = ref MemoryMarshal.GetReference(_x);
            ref float ys = ref MemoryMarshal.GetReference(_y);
            int i = 0;
            for (; i <= _x.Length - S.Count; i += S.Count) S.Store(_op.Invoke<TV, S>(S.Load(ref xs, i)), ref ys, i);
            for (; i < _x.Length; i++) _y[i] = _op.Invoke(_x[i]);
        }

        public void RunScalar() => _op.Reference(_x, _y);
    }

    ref struct BinaryWork<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) : IIsaWork
        where TOp : struct, IBinaryOperator
    {
        TOp _op = op;
        readonly ReadOnlySpan<float> _a = a, _b = b;
        readonly Span<float> _y = y;

        public void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV>
        {
            ref float ar = ref MemoryMarshal.GetReference(_a);
            ref float br = ref MemoryMarshal.GetReference(_b);
            ref float yr = ref MemoryMarshal.GetReference(_y);
            int i = 0;
            for (; i <= _a.Length - S.Count; i += S.Count)
                S.Store(_op.Invoke<TV, S>(S.Load(ref ar, i), S.Load(ref br, i)), ref yr, i);
            for (; i < _a.Length; i++) _y[i] = _op.Invoke(_a[i], _b[i]);
        }

        public void RunScalar() => _op.Reference(_a, _b, _y);
    }
}
