namespace Qwen2.Kernels;

internal readonly partial struct Q4KFormat
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
}
