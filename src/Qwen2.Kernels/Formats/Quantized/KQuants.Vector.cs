namespace Qwen2.Kernels;

// The vector paths of the K-quant dot products; each returns its scalar twin's bits.
internal readonly partial struct Q4KFormat
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
}

internal readonly partial struct Q5KFormat
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
}

internal readonly partial struct Q6KFormat
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => DotScalar(ref w, ref a, blocks);
}
