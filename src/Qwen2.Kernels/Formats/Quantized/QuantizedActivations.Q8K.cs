using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Q8K quantization on 256-bit vectors. The largest magnitude is a maximum (exact in any order), the products
/// x · (1/d) are the scalar twin's, and rounding (ties to even) then the saturating conversion match
/// <c>(int)MathF.Round</c> for every input, even where 1/d overflows for a block of tiny values; so the bytes are the
/// scalar twin's.
/// </summary>
internal static partial class QuantizedActivations
{
    private static partial void QuantizeQ8K(ref float x, ref byte dst, int blocks, Isa isa)
    {
        // Vector512 runs the 256-bit loop too: a product quantizes each activation once but reads every weight, so this
        // loop is a small part of it, and a second width would be more code to keep exact for little gain.
        if (isa != Isa.Scalar) QuantizeQ8K256(ref x, ref dst, blocks);
        else QuantizeQ8KScalar(ref x, ref dst, blocks);
    }

    private static void QuantizeQ8K256(ref float x, ref byte dst, int blocks)
    {
        for (int b = 0; b < blocks; b++)
        {
            ref float xb = ref Unsafe.Add(ref x, b * Q8KSize);
            ref byte o = ref Unsafe.Add(ref dst, b * Q8KBytes);
            var m = Vector256<float>.Zero;
            for (int i = 0; i < Q8KSize; i += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.LoadUnsafe(ref xb, (nuint)i)));
            var (d, id) = Scale(Max(m.GetLower(), m.GetUpper()));
            Unsafe.WriteUnaligned(ref o, d);
            var inverse = Vector256.Create(id);
            for (int g = 0; g < Q8KSize / 16; g++)
            {
                var q0 = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref xb, (nuint)(16 * g)) * inverse));
                var q1 = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref xb, (nuint)(16 * g + 8)) * inverse));
                var s = Vector256.Narrow(q0, q1);
                Vector128.Narrow(s.GetLower(), s.GetUpper()).StoreUnsafe(ref Unsafe.As<byte, sbyte>(ref o), (nuint)(Q8KValues + 16 * g));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, Q8KSums + 2 * g), (short)Vector256.Sum(q0 + q1));
            }
            WritePairs(ref o);
        }
    }

    /// <summary>The largest of four lanes (any order: a maximum of finite values is exact).</summary>
    private static float Max(Vector128<float> lo, Vector128<float> hi)
    {
        var m = Vector128.Max(lo, hi);
        return MathF.Max(MathF.Max(m.GetElement(0), m.GetElement(1)), MathF.Max(m.GetElement(2), m.GetElement(3)));
    }
}
