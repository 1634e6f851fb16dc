namespace Qwen2.Kernels;

internal static partial class QuantizedActivations
{
    private static partial void QuantizeQ8(ref float x, ref byte dst, int blocks, Isa isa) => QuantizeQ8Scalar(ref x, ref dst, blocks);
}
