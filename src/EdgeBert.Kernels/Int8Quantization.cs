using System.Numerics;
using System.Runtime.CompilerServices;

namespace EdgeBert.Kernels;

/// <summary>Symmetric int8 quantization of one row: scale = max|x| / 127 (1 for an all-zero row, whose values are
/// all 0 either way), q = clamp(round(x / scale), -127, 127), rounding half to even (MathF.Round). The vector
/// loop does the same IEEE division and rounding per lane, so it gives the same integers as the scalar one.</summary>
internal static unsafe class Int8Quantization
{
    public static float Scale(float maxAbs) => maxAbs == 0f ? 1f : maxAbs / 127f;

    public static sbyte Quantize(float x, float scale) => (sbyte)Math.Clamp(MathF.Round(x / scale), -127f, 127f);

    /// <summary><see cref="Quantize(float, float)"/> lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<int> Quantize(float* x, Vector<float> scale) =>
        Vector.ConvertToInt32(Vector.Clamp(Vector.Round(Vector.Load(x) / scale), new(-127f), new(127f)));

    /// <summary>Quantizes x[0..k) into dest in the A layout of kernel (int8, int8 + 128, or int16), zero-padded
    /// to kPadded values; returns the scale.</summary>
    public static float Row(float* x, int k, int kPadded, byte* dest, Int8MicroKernel kernel)
    {
        int width = Vector<float>.Count;
        var maxVector = Vector<float>.Zero;
        int i = 0;
        for (; i <= k - width; i += width) maxVector = Vector.Max(maxVector, Vector.Abs(Vector.Load(x + i)));
        float maxAbs = 0f;
        for (int lane = 0; lane < width; lane++) maxAbs = MathF.Max(maxAbs, maxVector[lane]);
        for (; i < k; i++) maxAbs = MathF.Max(maxAbs, MathF.Abs(x[i]));
        float scale = Scale(maxAbs);

        bool wide = kernel.ElementBytes == 2;
        byte shift = kernel.ShiftedActivations ? (byte)0x80 : (byte)0;
        var divisor = new Vector<float>(scale);
        i = 0;
        for (; i <= k - 4 * width; i += 4 * width)
        {
            Vector<short> s01 = Vector.Narrow(Quantize(x + i, divisor), Quantize(x + i + width, divisor));
            Vector<short> s23 =
                Vector.Narrow(Quantize(x + i + 2 * width, divisor), Quantize(x + i + 3 * width, divisor));
            if (wide)
            {
                Vector.Store(s01, (short*)dest + i);
                Vector.Store(s23, (short*)dest + i + 2 * width);
            }
            else Vector.Store(Vector.AsVectorByte(Vector.Narrow(s01, s23)) ^ new Vector<byte>(shift), dest + i);
        }
        for (; i < kPadded; i++)
        {
            sbyte q = i < k ? Quantize(x[i], scale) : (sbyte)0;
            if (wide) ((short*)dest)[i] = q;
            else dest[i] = (byte)((byte)q ^ shift);
        }
        return scale;
    }
}
