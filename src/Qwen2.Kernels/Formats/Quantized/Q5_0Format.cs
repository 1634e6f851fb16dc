using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>ggml Q5_0: binary16 d, 32 high bits (bit i for element i), then nibbles as in Q4_0; x = (q − 16) · d.</summary>
internal readonly struct Q5_0Format : IBlock32
{
    public static int BlockSize => 32;
    public static int BlockBytes => 22;
    public static ActivationFormat Activation => ActivationFormat.Q8;
    public static bool HasMin => false;
    public static int TileRows => 4;

    public static void Unpack(ref byte block, Span<int> q, out float d, out float min)
    {
        d = QuantMath.Half(ref block);
        min = 0;
        uint qh = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref block, 2));
        for (int i = 0; i < 16; i++)
        {
            int b = Unsafe.Add(ref block, 6 + i);
            q[i] = ((b & 0xF) | (int)(((qh >> i) & 1) << 4)) - 16;
            q[i + 16] = ((b >> 4) | (int)(((qh >> (i + 16)) & 1) << 4)) - 16;
        }
    }

    // A clear high bit is q − 16 = nibble − 16, which is the nibble with its upper four bits set (ggml's trick).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Values256(ref byte block) =>
        Block32.Nibbles(ref Unsafe.Add(ref block, 6)) | Vector256.AndNot(Vector256.Create((byte)0xF0), Block32.Bits(ref Unsafe.Add(ref block, 2)));

    public static int Offset => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Offset256(ref byte block) =>
        Block32.Nibbles(ref Unsafe.Add(ref block, 6)) | (Block32.Bits(ref Unsafe.Add(ref block, 2)) & Vector256.Create((byte)0x10));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<byte> Low, Vector256<byte> High) OffsetHalves256(ref byte first, ref byte second)
    {
        var (low, high) = Block32.NibbleHalves(ref Unsafe.Add(ref first, 6), ref Unsafe.Add(ref second, 6));
        var (bitsLow, bitsHigh) = Block32.BitHalves(ref Unsafe.Add(ref first, 2), ref Unsafe.Add(ref second, 2));
        var fifth = Vector256.Create((byte)0x10);
        return (low | (bitsLow & fifth), high | (bitsHigh & fifth));
    }

    public static void DequantizeBlock(ref byte block, Span<float> destination) => Block32.Dequantize<Q5_0Format>(ref block, destination);

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        Block32.DotTokens<Q5_0Format>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static float Dot(ref byte w, ref byte a, int blocks, Isa isa) => Block32.Dot<Q5_0Format>(ref w, ref a, blocks, isa);

    public static void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) =>
        Block32.Dot4Rows<Q5_0Format>(ref w, stride, ref a, blocks, ref dst, isa);
}
