using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// ggml Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit high parts, 16 int8 scales (one per 16 elements), binary16 d;
/// x = d · sc · (q − 32). In each half of 128 elements, element 32k + l takes the low (k &lt; 2) or high nibble of byte
/// l + 32 (k mod 2) and bits 2k, 2k + 1 of high byte l.
/// </summary>
/// <remarks>
/// Defined order of the dot product with <see cref="ActivationFormat.Q8K"/> activations (the scalar twin): per
/// super-block, sumi = Σ_g sc_g · Σ (q − 32)·a over 16 groups of 16 as an exact integer, then
/// acc = fma(d_w · d_a, sumi, acc), super-block after super-block.
/// </remarks>
internal readonly partial struct Q6KFormat : IQuantFormat
{
    public static int BlockSize => 256;
    public static int BlockBytes => 210;
    public static ActivationFormat Activation => ActivationFormat.Q8K;

    /// <summary>Element e's value, q − 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Value(ref byte block, int e)
    {
        int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
        int lowByte = Unsafe.Add(ref block, 64 * h + l + 32 * (k & 1));
        int low = k < 2 ? lowByte & 0xF : lowByte >> 4;
        int high = (Unsafe.Add(ref block, 128 + 32 * h + l) >> (2 * k)) & 3;
        return (low | (high << 4)) - 32;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Scale(ref byte block, int g) => (sbyte)Unsafe.Add(ref block, 192 + g);

    public static void DequantizeBlock(ref byte block, Span<float> destination)
    {
        float d = QuantMath.Half(ref Unsafe.Add(ref block, 208));
        for (int e = 0; e < 256; e++) destination[e] = d * Scale(ref block, e >> 4) * Value(ref block, e);
    }

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        KQuant.DotTokens<Q6KFormat, Q6KFormat.V256<NativeProducts>, Q6KFormat.V512>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) =>
        KQuant.Dot4Rows<Q6KFormat, Q6KFormat.V256<NativeProducts>>(ref w, stride, ref a, blocks, ref dst, isa);

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
            int sumi = 0;
            for (int g = 0; g < 16; g++)
            {
                int isum = 0;
                for (int e = 16 * g; e < 16 * g + 16; e++) isum += Value(ref wb, e) * (sbyte)Unsafe.Add(ref ab, QuantizedActivations.Q8KValues + e);
                sumi += Scale(ref wb, g) * isum;
            }
            acc = MathF.FusedMultiplyAdd(QuantMath.Half(ref Unsafe.Add(ref wb, 208)) * QuantMath.Single(ref ab), sumi, acc);
        }
        return acc;
    }

    private static partial float DotV512(ref byte w, ref byte a, int blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks);
}
