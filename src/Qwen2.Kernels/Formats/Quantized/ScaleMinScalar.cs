using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>The element values of a Q4_K or Q5_K super-block, for the scalar twins they share.</summary>
internal interface IScaleMinValues
{
    /// <summary>Element <paramref name="e"/>'s unsigned value.</summary>
    static abstract int Value(ref byte block, int e);
}

/// <summary>
/// Q4_K's and Q5_K's dequantization and scalar dot product, which differ only in how an element's value is read: d and
/// dmin at bytes 0 and 2, the packed 6-bit scales and minimums at byte 4, x = d · sc · q − dmin · m.
/// </summary>
internal static class ScaleMinScalar
{
    public static void Dequantize<T>(ref byte block, Span<float> destination) where T : IScaleMinValues
    {
        float d = QuantMath.Half(ref block), dmin = QuantMath.Half(ref Unsafe.Add(ref block, 2));
        ref byte scales = ref Unsafe.Add(ref block, 4);
        for (int s = 0; s < 8; s++)
        {
            var (sc, m) = QuantMath.ScaleMinK4(s, ref scales);
            float d1 = d * sc, m1 = dmin * m;
            for (int e = 32 * s; e < 32 * s + 32; e++) destination[e] = d1 * T.Value(ref block, e) - m1;
        }
    }

    /// <summary>The defined order of <see cref="Q4KFormat"/>'s remarks, as written.</summary>
    public static float Dot<T>(ref byte w, ref byte a, int blocks, int blockBytes) where T : IScaleMinValues
    {
        float acc = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref byte wb = ref Unsafe.Add(ref w, b * blockBytes);
            ref byte ab = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8KBytes);
            float da = QuantMath.Single(ref ab);
            int sumi = 0, summ = 0;
            for (int s = 0; s < 8; s++)
            {
                var (sc, m) = QuantMath.ScaleMinK4(s, ref Unsafe.Add(ref wb, 4));
                int isum = 0;
                for (int e = 32 * s; e < 32 * s + 32; e++) isum += T.Value(ref wb, e) * (sbyte)Unsafe.Add(ref ab, QuantizedActivations.Q8KValues + e);
                sumi += sc * isum;
                summ += m * (Q4KFormat.Sum16(ref ab, 2 * s) + Q4KFormat.Sum16(ref ab, 2 * s + 1));
            }
            acc = MathF.FusedMultiplyAdd(QuantMath.Half(ref wb) * da, sumi, acc);
            acc = MathF.FusedMultiplyAdd(-(QuantMath.Half(ref Unsafe.Add(ref wb, 2)) * da), summ, acc);
        }
        return acc;
    }
}
