using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>The vector operations the element-wise kernels are written against, so one generic
/// kernel body serves Vector512, Vector256 and Vector128 (the JIT specialises each struct and
/// inlines these calls). Only cross-platform Vector128 APIs are used, so the 128-bit path runs on NEON.
/// MulAdd is a*b+c, fused where the hardware has FMA.</summary>
internal interface ISimd<TV> where TV : struct
{
    static abstract int Count { get; }
    static abstract TV Load(ref float p, int i);
    static abstract void Store(TV v, ref float p, int i);
    static abstract TV Splat(float s);
    static abstract TV Add(TV a, TV b);
    static abstract TV Subtract(TV a, TV b);
    static abstract TV Multiply(TV a, TV b);
    static abstract TV Divide(TV a, TV b);
    static abstract TV MulAdd(TV a, TV b, TV c);
    static abstract TV Max(TV a, TV b);
    static abstract TV Abs(TV a);
    static abstract TV CopySign(TV magnitude, TV sign);
    static abstract TV Exp(TV a);
    static abstract TV Round(TV a);
    static abstract TV Min(TV a, TV b);
    /// <summary>value * 2^exponent for an integral exponent in [-126, 127], by adding to the exponent bits.</summary>
    static abstract TV ScaleByPowerOfTwo(TV value, TV exponent);
    static abstract TV LessThan(TV a, TV b);
    static abstract TV Select(TV mask, TV ifSet, TV otherwise);
    static abstract float Sum(TV a);
    static abstract float MaxAcross(TV a);
    /// <summary>Sum of p[0..count) accumulated in double lanes (whole vectors only: count % Count == 0).</summary>
    static abstract double WideSum(ref float p, int count);
}

internal readonly struct Simd512 : ISimd<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(ref float p, int i) => Vector512.LoadUnsafe(ref p, (nuint)i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> v, ref float p, int i) => v.StoreUnsafe(ref p, (nuint)i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Splat(float s) => Vector512.Create(s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MulAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Vector512.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Abs(Vector512<float> a) => Vector512.Abs(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> CopySign(Vector512<float> m, Vector512<float> s) => Vector512.CopySign(m, s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> a) => FastExp.Compute<Vector512<float>, Simd512>(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> a) => Vector512.Round(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ScaleByPowerOfTwo(Vector512<float> value, Vector512<float> exponent) =>
        (Vector512.ConvertToInt32(exponent) + Vector512.Create(127) << 23).AsSingle() * value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LessThan(Vector512<float> a, Vector512<float> b) => Vector512.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Select(Vector512<float> m, Vector512<float> a, Vector512<float> b) =>
        Vector512.ConditionalSelect(m, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> a) => Vector512.Sum(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> a) => Simd256.MaxAcross(Vector256.Max(a.GetLower(), a.GetUpper()));
    public static double WideSum(ref float p, int count)
    {
        var lower = Vector512<double>.Zero;
        var upper = Vector512<double>.Zero;
        for (int i = 0; i < count; i += Vector512<float>.Count)
        {
            var v = Vector512.LoadUnsafe(ref p, (nuint)i);
            lower += Vector512.WidenLower(v);
            upper += Vector512.WidenUpper(v);
        }
        return Vector512.Sum(lower + upper);
    }
}

internal readonly struct Simd256 : ISimd<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(ref float p, int i) => Vector256.LoadUnsafe(ref p, (nuint)i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> v, ref float p, int i) => v.StoreUnsafe(ref p, (nuint)i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Splat(float s) => Vector256.Create(s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Vector256.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Abs(Vector256<float> a) => Vector256.Abs(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> CopySign(Vector256<float> m, Vector256<float> s) => Vector256.CopySign(m, s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> a) => FastExp.Compute<Vector256<float>, Simd256>(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> a) => Vector256.Round(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ScaleByPowerOfTwo(Vector256<float> value, Vector256<float> exponent) =>
        (Vector256.ConvertToInt32(exponent) + Vector256.Create(127) << 23).AsSingle() * value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LessThan(Vector256<float> a, Vector256<float> b) => Vector256.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Select(Vector256<float> m, Vector256<float> a, Vector256<float> b) =>
        Vector256.ConditionalSelect(m, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> a) => Vector256.Sum(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> a) => Simd128.MaxAcross(Vector128.Max(a.GetLower(), a.GetUpper()));
    public static double WideSum(ref float p, int count)
    {
        var lower = Vector256<double>.Zero;
        var upper = Vector256<double>.Zero;
        for (int i = 0; i < count; i += Vector256<float>.Count)
        {
            var v = Vector256.LoadUnsafe(ref p, (nuint)i);
            lower += Vector256.WidenLower(v);
            upper += Vector256.WidenUpper(v);
        }
        return Vector256.Sum(lower + upper);
    }
}

internal readonly struct Simd128 : ISimd<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(ref float p, int i) => Vector128.LoadUnsafe(ref p, (nuint)i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> v, ref float p, int i) => v.StoreUnsafe(ref p, (nuint)i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Splat(float s) => Vector128.Create(s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        Vector128.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Abs(Vector128<float> a) => Vector128.Abs(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> CopySign(Vector128<float> m, Vector128<float> s) => Vector128.CopySign(m, s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> a) => FastExp.Compute<Vector128<float>, Simd128>(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Round(Vector128<float> a) => Vector128.Round(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ScaleByPowerOfTwo(Vector128<float> value, Vector128<float> exponent) =>
        (Vector128.ConvertToInt32(exponent) + Vector128.Create(127) << 23).AsSingle() * value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LessThan(Vector128<float> a, Vector128<float> b) => Vector128.LessThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Select(Vector128<float> m, Vector128<float> a, Vector128<float> b) =>
        Vector128.ConditionalSelect(m, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> a) => Vector128.Sum(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> a)
    {
        // Max is NaN-propagating lane by lane, so a NaN anywhere reaches the result.
        float m = a.GetElement(0);
        for (int i = 1; i < Vector128<float>.Count; i++) m = MathF.Max(m, a.GetElement(i));
        return m;
    }
    public static double WideSum(ref float p, int count)
    {
        var lower = Vector128<double>.Zero;
        var upper = Vector128<double>.Zero;
        for (int i = 0; i < count; i += Vector128<float>.Count)
        {
            var v = Vector128.LoadUnsafe(ref p, (nuint)i);
            lower += Vector128.WidenLower(v);
            upper += Vector128.WidenUpper(v);
        }
        return Vector128.Sum(lower + upper);
    }
}

/// <summary>exp in float: n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for an exact
/// product), e^r by its Taylor polynomial to degree 7 (|r| &lt;= ln2/2: truncation 5e-9 relative),
/// times 2^n. Several times faster than Vector*.Exp of .NET 10 (which works in double).
/// Below -87.3 the result is 0 (no subnormals), above 88.3 it is +inf (true overflow: 88.72); NaN stays NaN.</summary>
internal static class FastExp
{
    const float Log2E = 1.44269504088896341f;
    const float Ln2High = 0.693145751953125f;   // 16 significant bits: n * Ln2High is exact
    const float Ln2Low = 1.42860682030941723e-6f;
    const float Lowest = -87.3f, Highest = 88.3f; // 2^n stays a normal float for n in [-126, 127]

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Compute<TV, S>(TV x) where TV : struct where S : struct, ISimd<TV>
    {
        var clamped = S.Min(S.Max(x, S.Splat(Lowest)), S.Splat(Highest));
        var n = S.Round(S.Multiply(clamped, S.Splat(Log2E)));
        var r = S.MulAdd(n, S.Splat(-Ln2High), clamped);
        r = S.MulAdd(n, S.Splat(-Ln2Low), r);
        var p = S.MulAdd(S.Splat(1f / 5040), r, S.Splat(1f / 720));
        p = S.MulAdd(p, r, S.Splat(1f / 120));
        p = S.MulAdd(p, r, S.Splat(1f / 24));
        p = S.MulAdd(p, r, S.Splat(1f / 6));
        p = S.MulAdd(p, r, S.Splat(0.5f));
        p = S.MulAdd(p, r, S.Splat(1f));
        p = S.MulAdd(p, r, S.Splat(1f));
        var result = S.ScaleByPowerOfTwo(p, n);
        result = S.Select(S.LessThan(x, S.Splat(Lowest)), default, result);
        return S.Select(S.LessThan(S.Splat(Highest), x), S.Splat(float.PositiveInfinity), result);
    }
}
