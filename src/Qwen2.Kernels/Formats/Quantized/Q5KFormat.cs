using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// ggml Q5_K: binary16 d and dmin, 12 bytes of packed 6-bit scales and minimums, 32 bytes of high bits (bit s of byte
/// l is the fifth bit of element 32s + l), then 128 bytes of nibbles laid out as in Q4_K; x = d · sc · q − dmin · m.
/// </summary>
/// <remarks>The dot product's defined order is Q4_K's (<see cref="Q4KFormat"/>), with 5-bit values.</remarks>
internal readonly partial struct Q5KFormat : IQuantFormat, IScaleMinValues
{
    public static int BlockSize => 256;
    public static int BlockBytes => 176;
    public static ActivationFormat Activation => ActivationFormat.Q8K;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Value(ref byte block, int e)
    {
        int s = e >> 5, l = e & 31, b = Unsafe.Add(ref block, 48 + 32 * (s >> 1) + l);
        int low = (s & 1) == 0 ? b & 0xF : b >> 4;
        return low | (((Unsafe.Add(ref block, 16 + l) >> s) & 1) << 4);
    }

    public static void DequantizeBlock(ref byte block, Span<float> destination) => ScaleMinScalar.Dequantize<Q5KFormat>(ref block, destination);

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        KQuant.DotTokens<Q5KFormat, ScaleMinKernels.V256<Q5KFormat, NativeProducts>, ScaleMinKernels.V512<Q5KFormat>>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) =>
        KQuant.Dot4Rows<Q5KFormat, ScaleMinKernels.V256<Q5KFormat, NativeProducts>>(ref w, stride, ref a, blocks, ref dst, isa);

    public static float Dot(ref byte w, ref byte a, int blocks, Isa isa) => isa switch
    {
        Isa.Vector512 => DotV512(ref w, ref a, blocks),
        Isa.Vector256 => DotV256(ref w, ref a, blocks),
        _ => DotScalar(ref w, ref a, blocks),
    };

    /// <summary>The scalar twin.</summary>
    public static float DotScalar(ref byte w, ref byte a, int blocks) => ScaleMinScalar.Dot<Q5KFormat>(ref w, ref a, blocks, BlockBytes);

    private static partial float DotV512(ref byte w, ref byte a, int blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks);
}
