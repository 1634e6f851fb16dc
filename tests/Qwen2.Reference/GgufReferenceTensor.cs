using Qwen2.Kernels;

namespace Qwen2.Reference;

/// <summary>One tensor's info: GGUF dimensions (innermost first), element type, offset in the data section.</summary>
public sealed record GgufReferenceTensor(string Name, long[] Dims, WeightType Type, long Offset)
{
    /// <summary>Element count.</summary>
    public long Elements => Dims.Aggregate(1L, (x, y) => checked(x * y));

    /// <summary>Bytes of data.</summary>
    public long Bytes => WeightTypes.ByteCount(Type, Elements);
}
