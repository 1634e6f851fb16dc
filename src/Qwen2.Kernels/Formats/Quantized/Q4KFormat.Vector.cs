using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

internal readonly partial struct Q4KFormat : IKQuantKernel, IScaleMinWeights
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => KQuant.Dot512<Q4KFormat>(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => KQuant.Dot256<Q4KFormat>(ref w, ref a, blocks);

    public static void Tokens256<TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where TN : struct, ITokens =>
        ScaleMinKernels.Tokens256<Q4KFormat, TN>(ref w, ref a, aStride, blocks, ref dst);

    public static void Tokens512<TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where TN : struct, ITokens =>
        ScaleMinKernels.Tokens512<Q4KFormat, TN>(ref w, ref a, aStride, blocks, ref dst);

    public static int SuperBlockBytes => BlockBytes;

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
