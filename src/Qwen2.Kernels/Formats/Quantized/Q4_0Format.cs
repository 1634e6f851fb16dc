using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>ggml Q4_0: binary16 d, then 16 bytes whose low nibbles are elements 0-15 and high nibbles 16-31; x = (q − 8) · d.</summary>
internal readonly struct Q4_0Format : IBlock32
{
    public static int BlockSize => 32;
    public static int BlockBytes => 18;
    public static ActivationFormat Activation => ActivationFormat.Q8;
    public static bool HasMin => false;
    public static int TileRows => 4;

    public static void Unpack(ref byte block, Span<int> q, out float d, out float min)
    {
        d = QuantMath.Half(ref block);
        min = 0;
        for (int i = 0; i < 16; i++)
        {
            int b = Unsafe.Add(ref block, 2 + i);
            q[i] = (b & 0xF) - 8;
            q[i + 16] = (b >> 4) - 8;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Values256(ref byte block) => Block32.Nibbles(ref Unsafe.Add(ref block, 2)) - Vector256.Create((byte)8);

    public static int Offset => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Offset256(ref byte block) => Block32.Nibbles(ref Unsafe.Add(ref block, 2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<byte> Low, Vector256<byte> High) OffsetHalves256(ref byte first, ref byte second) =>
        Block32.NibbleHalves(ref Unsafe.Add(ref first, 2), ref Unsafe.Add(ref second, 2));

    public static void DequantizeBlock(ref byte block, Span<float> destination) => Block32.Dequantize<Q4_0Format>(ref block, destination);

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        Block32.DotTokens<Q4_0Format>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static float Dot(ref byte w, ref byte a, int blocks, Isa isa) => Block32.Dot<Q4_0Format>(ref w, ref a, blocks, isa);

    public static void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) =>
        Block32.Dot4Rows<Q4_0Format>(ref w, stride, ref a, blocks, ref dst, isa);
}
