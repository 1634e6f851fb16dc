using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

internal readonly partial struct Q4KFormat : IScaleMinWeights
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => KQuant.Dot<ScaleMinKernels.V512<Q4KFormat>>(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => KQuant.Dot<ScaleMinKernels.V256<Q4KFormat, NativeProducts>>(ref w, ref a, blocks);

    public static int SuperBlockBytes => BlockBytes;

    public static bool UnpackTogether => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<byte> Low, Vector256<byte> High) Chunk256(ref byte block, int c)
    {
        var q = Vector256.LoadUnsafe(ref block, (nuint)(16 + 32 * c));
        return (q & Vector256.Create((byte)0x0F), (q.AsUInt16() >> 4).AsByte() & Vector256.Create((byte)0x0F));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Chunk512(ref byte block, int c)
    {
        var q = Vector256.LoadUnsafe(ref block, (nuint)(16 + 32 * c));
        return Vector512.Create(q, (q.AsUInt16() >> 4).AsByte()) & Vector512.Create((byte)0x0F);
    }
}
