using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <remarks>
/// Q8's vector paths do the scalar twin's float operations element by element (|x|, the maximum, x · (1/d) rounded to
/// nearest even, d · Σq), and integer sums are exact in any order, so the bytes are the same. Vector Max, like MathF.Max,
/// propagates NaN; conversions saturate like the scalar cast; narrowing truncates like the scalar (sbyte) cast. The last
/// four lanes' maximum is the one Q8K's vector path uses.
/// </remarks>
internal static partial class QuantizedActivations
{
    private static partial void QuantizeQ8(ref float x, ref byte dst, int blocks, Isa isa)
    {
        if (isa == Isa.Vector512 && Vector512.IsHardwareAccelerated) QuantizeQ8V512(ref x, ref dst, blocks);
        else if (isa != Isa.Scalar && Vector256.IsHardwareAccelerated) QuantizeQ8V256(ref x, ref dst, blocks);
        else QuantizeQ8Scalar(ref x, ref dst, blocks);
    }

    private static void QuantizeQ8V256(ref float x, ref byte dst, int blocks)
    {
        for (int b = 0; b < blocks; b++)
        {
            ref float xb = ref Unsafe.Add(ref x, b * Q8Size);
            ref byte o = ref Unsafe.Add(ref dst, b * Q8Bytes);
            var v0 = Vector256.LoadUnsafe(ref xb);
            var v1 = Vector256.LoadUnsafe(ref xb, 8);
            var v2 = Vector256.LoadUnsafe(ref xb, 16);
            var v3 = Vector256.LoadUnsafe(ref xb, 24);
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            var (d, id) = Scale(Max(m.GetLower(), m.GetUpper()));
            var inv = Vector256.Create(id);
            var q0 = Vector256.ConvertToInt32(Vector256.Round(v0 * inv));
            var q1 = Vector256.ConvertToInt32(Vector256.Round(v1 * inv));
            var q2 = Vector256.ConvertToInt32(Vector256.Round(v2 * inv));
            var q3 = Vector256.ConvertToInt32(Vector256.Round(v3 * inv));
            Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3)).StoreUnsafe(ref Unsafe.As<byte, sbyte>(ref Unsafe.Add(ref o, Q8Values)));
            Finish(ref o, d, Vector256.Sum((q0 + q1) + (q2 + q3)));
        }
    }

    private static void QuantizeQ8V512(ref float x, ref byte dst, int blocks)
    {
        for (int b = 0; b < blocks; b++)
        {
            ref float xb = ref Unsafe.Add(ref x, b * Q8Size);
            ref byte o = ref Unsafe.Add(ref dst, b * Q8Bytes);
            var v0 = Vector512.LoadUnsafe(ref xb);
            var v1 = Vector512.LoadUnsafe(ref xb, 16);
            var m = Vector512.Max(Vector512.Abs(v0), Vector512.Abs(v1));
            var m8 = Vector256.Max(m.GetLower(), m.GetUpper());
            var (d, id) = Scale(Max(m8.GetLower(), m8.GetUpper()));
            var inv = Vector512.Create(id);
            var q0 = Vector512.ConvertToInt32(Vector512.Round(v0 * inv));
            var q1 = Vector512.ConvertToInt32(Vector512.Round(v1 * inv));
            var s = Vector512.Narrow(q0, q1);
            Vector512.Narrow(s, s).GetLower().StoreUnsafe(ref Unsafe.As<byte, sbyte>(ref Unsafe.Add(ref o, Q8Values)));
            Finish(ref o, d, Vector512.Sum(q0 + q1));
        }
    }

    /// <summary>Writes a Q8 block's d and s = d · Σq.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(ref byte block, float d, int sum)
    {
        Unsafe.WriteUnaligned(ref block, d);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref block, 4), d * sum);
    }
}
