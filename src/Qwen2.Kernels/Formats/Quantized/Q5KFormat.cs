using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// ggml Q5_K: binary16 d and dmin, 12 bytes of packed 6-bit scales and minimums, 32 bytes of high bits (bit s of byte
/// l is the fifth bit of element 32s + l), then 128 bytes of nibbles laid out as in Q4_K; x = d · sc · q − dmin · m.
/// </summary>
/// <remarks>The dot product's defined order is Q4_K's (<see cref="Q4KFormat"/>), with 5-bit values.</remarks>
internal readonly partial struct Q5KFormat : IQuantFormat
{
    public static int BlockSize => 256;
    public static int BlockBytes => 176;
    public static ActivationFormat Activation => ActivationFormat.Q8K;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Value(ref byte block, int e)
    {
        int s = e >> 5, l = e & 31, b = Unsafe.Add(ref block, 48 + 32 * (s >> 1) + l);
        int low = (s & 1) == 0 ? b & 0xF : b >> 4;
        return low | (((Unsafe.Add(ref block, 16 + l) >> s) & 1) << 4);
    }

    public static void DequantizeBlock(ref byte block, Span<float> destination)
    {
        float d = QuantMath.Half(ref block), dmin = QuantMath.Half(ref Unsafe.Add(ref block, 2));
        ref byte scales = ref Unsafe.Add(ref block, 4);
        for (int s = 0; s < 8; s++)
        {
            var (sc, m) = QuantMath.ScaleMinK4(s, ref scales);
            float d1 = d * sc, m1 = dmin * m;
            for (int e = 32 * s; e < 32 * s + 32; e++) destination[e] = d1 * Value(ref block, e) - m1;
        }
    }

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        KQuant.DotTokens<Q5KFormat, ScaleMinKernels.V256<Q5KFormat, NativeProducts>, ScaleMinKernels.V512<Q5KFormat>>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static float Dot(ref byte w, ref byte a, int blocks, Isa isa) => isa switch
    {
        Isa.Vector512 => DotV512(ref w, ref a, blocks),
        Isa.Vector256 => DotV256(ref w, ref a, blocks),
        _ => DotScalar(ref w, ref a, blocks),
    };

    /// <summary>The scalar twin.</summary>
    public static float DotScalar(ref byte w, ref byte a, int blocks)
    {
        float acc = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref byte wb = ref Unsafe.Add(ref w, b * BlockBytes);
            ref byte ab = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8KBytes);
            float da = QuantMath.Single(ref ab);
            int sumi = 0, summ = 0;
            for (int s = 0; s < 8; s++)
            {
                var (sc, m) = QuantMath.ScaleMinK4(s, ref Unsafe.Add(ref wb, 4));
                int isum = 0;
                for (int e = 32 * s; e < 32 * s + 32; e++) isum += Value(ref wb, e) * (sbyte)Unsafe.Add(ref ab, QuantizedActivations.Q8KValues + e);
                sumi += sc * isum;
                summ += m * (Q4KFormat.Sum16(ref ab, 2 * s) + Q4KFormat.Sum16(ref ab, 2 * s + 1));
            }
            acc = MathF.FusedMultiplyAdd(QuantMath.Half(ref wb) * da, sumi, acc);
            acc = MathF.FusedMultiplyAdd(-(QuantMath.Half(ref Unsafe.Add(ref wb, 2)) * da), summ, acc);
        }
        return acc;
    }

    private static partial float DotV512(ref byte w, ref byte a, int blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks);
}
