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
internal readonly partial struct Q4KFormat : IQuantFormat, IScaleMinValues
{
    public static int BlockSize => 256;
    public static int BlockBytes => 144;
    public static ActivationFormat Activation => ActivationFormat.Q8K;

    /// <summary>Element e's 4-bit value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Value(ref byte block, int e)
    {
        int s = e >> 5, b = Unsafe.Add(ref block, 16 + 32 * (s >> 1) + (e & 31));
        return (s & 1) == 0 ? b & 0xF : b >> 4;
    }

    public static void DequantizeBlock(ref byte block, Span<float> destination) => ScaleMinScalar.Dequantize<Q4KFormat>(ref block, destination);

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        KQuant.DotTokens<Q4KFormat, ScaleMinKernels.V256<Q4KFormat, NativeProducts>, ScaleMinKernels.V512<Q4KFormat>>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) =>
        KQuant.Dot4Rows<Q4KFormat, ScaleMinKernels.V256<Q4KFormat, NativeProducts>>(ref w, stride, ref a, blocks, ref dst, isa);

    public static float Dot(ref byte w, ref byte a, int blocks, Isa isa) => isa switch
    {
        Isa.Vector512 => DotV512(ref w, ref a, blocks),
        Isa.Vector256 => DotV256(ref w, ref a, blocks),
        _ => DotScalar(ref w, ref a, blocks),
    };

    /// <summary>The scalar twin.</summary>
    public static float DotScalar(ref byte w, ref byte a, int blocks) => ScaleMinScalar.Dot<Q4KFormat>(ref w, ref a, blocks, BlockBytes);

    /// <summary>Group g's sum of 16 activation values in a Q8K block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Sum16(ref byte activationBlock, int g) =>
        Unsafe.ReadUnaligned<short>(ref Unsafe.Add(ref activationBlock, QuantizedActivations.Q8KSums + 2 * g));

    private static partial float DotV512(ref byte w, ref byte a, int blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks);
}
