using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// ggml Q4_K: binary16 d and dmin, 12 bytes of packed 6-bit scales and minimums for 8 sub-blocks of 32, then 128 bytes
/// of nibbles (chunk c of 64 elements: low nibbles of bytes 32c..32c+31 are sub-block 2c, high nibbles 2c+1);
/// x = d · sc · q − dmin · m.
/// </summary>
/// <remarks>
/// Defined order of the dot product with <see cref="ActivationFormat.Q8K"/> activations (the scalar twin): per
/// super-block, sumi = Σ_s sc_s · Σ q·a and summ = Σ_s m_s · (bsum_2s + bsum_2s+1) as exact integers, then
/// acc = fma(d_w · d_a, sumi, acc) and acc = fma(−(dmin_w · d_a), summ, acc), super-block after super-block.
/// </remarks>
internal readonly partial struct Q4KFormat : IQuantFormat
{
    public static int BlockSize => 256;
    public static int BlockBytes => 144;
    public static ActivationFormat Activation => ActivationFormat.Q8K;

    /// <summary>Element e's 4-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Value(ref byte block, int e)
    {
        int s = e >> 5, b = Unsafe.Add(ref block, 16 + 32 * (s >> 1) + (e & 31));
        return (s & 1) == 0 ? b & 0xF : b >> 4;
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
        KQuant.DotTokens<Q4KFormat, ScaleMinKernels.V256<Q4KFormat, NativeProducts>, ScaleMinKernels.V512<Q4KFormat>>(ref w, ref a, aStride, tokens, blocks, destination, isa);

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
                summ += m * (Sum16(ref ab, 2 * s) + Sum16(ref ab, 2 * s + 1));
            }
            acc = MathF.FusedMultiplyAdd(QuantMath.Half(ref wb) * da, sumi, acc);
            acc = MathF.FusedMultiplyAdd(-(QuantMath.Half(ref Unsafe.Add(ref wb, 2)) * da), summ, acc);
        }
        return acc;
    }

    /// <summary>Group g's sum of 16 activation values in a Q8K block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Sum16(ref byte activationBlock, int g) =>
        Unsafe.ReadUnaligned<short>(ref Unsafe.Add(ref activationBlock, QuantizedActivations.Q8KSums + 2 * g));

    private static partial float DotV512(ref byte w, ref byte a, int blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks);
}
