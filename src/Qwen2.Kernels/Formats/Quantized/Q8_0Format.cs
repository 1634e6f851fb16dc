using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>ggml Q8_0: binary16 d, then 32 int8; x = q · d.</summary>
internal readonly struct Q8_0Format : IBlock32
{
    public static int BlockSize => 32;
    public static int BlockBytes => 34;
    public static ActivationFormat Activation => ActivationFormat.Q8;
    public static bool HasMin => false;
    public static int TileRows => 4;

    public static void Unpack(ref byte block, Span<int> q, out float d, out float min)
    {
        d = QuantMath.Half(ref block);
        min = 0;
        for (int i = 0; i < 32; i++) q[i] = (sbyte)Unsafe.Add(ref block, 2 + i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Values256(ref byte block) => Vector256.LoadUnsafe(ref Unsafe.Add(ref block, 2));

    public static int Offset => 128;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Offset256(ref byte block) => Vector256.LoadUnsafe(ref Unsafe.Add(ref block, 2)) ^ Vector256.Create((byte)0x80);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<byte> Low, Vector256<byte> High) OffsetHalves256(ref byte first, ref byte second)
    {
        var flip = Vector256.Create((byte)0x80);
        return (Vector256.Create(Vector128.LoadUnsafe(ref first, 2), Vector128.LoadUnsafe(ref second, 2)) ^ flip,
            Vector256.Create(Vector128.LoadUnsafe(ref first, 18), Vector128.LoadUnsafe(ref second, 18)) ^ flip);
    }

    public static void DequantizeBlock(ref byte block, Span<float> destination) => Block32.Dequantize<Q8_0Format>(ref block, destination);

    public static void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) =>
        Block32.DotTokens<Q8_0Format>(ref w, ref a, aStride, tokens, blocks, destination, isa);

    public static float Dot(ref byte w, ref byte a, int blocks, Isa isa) => Block32.Dot<Q8_0Format>(ref w, ref a, blocks, isa);

    public static void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) =>
        Block32.Dot4Rows<Q8_0Format>(ref w, stride, ref a, blocks, ref dst, isa);
}
