using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

internal readonly partial struct Q5KFormat : IScaleMinWeights
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => KQuant.Dot<ScaleMinKernels.V512<Q5KFormat>>(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => KQuant.Dot<ScaleMinKernels.V256<Q5KFormat, NativeProducts>>(ref w, ref a, blocks);

    public static int SuperBlockBytes => BlockBytes;

    public static bool UnpackTogether => true;

    // The high bits of sub-blocks 2c and 2c + 1 are bits 2c and 2c + 1 of each of the 32 bytes at 16. Shifting the
    // bytes as 16-bit lanes crosses into the neighbouring byte only in bits the mask 0x10 then drops.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> HighBits(ref byte block, int c) => Vector256.LoadUnsafe(ref block, 16).AsUInt16() >> (2 * c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<byte> Low, Vector256<byte> High) Chunk256(ref byte block, int c)
    {
        var q = Vector256.LoadUnsafe(ref block, (nuint)(48 + 32 * c));
        var h = HighBits(ref block, c);
        var nibble = Vector256.Create((byte)0x0F);
        var fifth = Vector256.Create((byte)0x10);
        return ((q & nibble) | ((h << 4).AsByte() & fifth), ((q.AsUInt16() >> 4).AsByte() & nibble) | ((h << 3).AsByte() & fifth));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Chunk512(ref byte block, int c)
    {
        var q = Vector256.LoadUnsafe(ref block, (nuint)(48 + 32 * c));
        var h = HighBits(ref block, c);
        return (Vector512.Create(q, (q.AsUInt16() >> 4).AsByte()) & Vector512.Create((byte)0x0F))
            | (Vector512.Create((h << 4).AsByte(), (h << 3).AsByte()) & Vector512.Create((byte)0x10));
    }
}
