namespace Qwen2.Kernels;

internal static partial class Block32
{
    private static float DotV512<T>(ref byte w, ref byte a, int blocks) where T : IBlock32 => DotScalar<T>(ref w, ref a, blocks);

    private static float DotV256<T>(ref byte w, ref byte a, int blocks) where T : IBlock32 => DotScalar<T>(ref w, ref a, blocks);
}
