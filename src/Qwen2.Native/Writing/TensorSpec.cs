using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>A tensor to be written by <see cref="SafeTensorsWriter"/>: its name, element type and dimensions.</summary>
/// <param name="Name">Tensor name, e.g. <c>model.norm.weight</c>.</param>
/// <param name="DType">Element type as stored.</param>
/// <param name="Shape">Dimensions, each non-negative; empty for a scalar.</param>
public sealed record TensorSpec(string Name, WeightType DType, IReadOnlyList<long> Shape)
{
    /// <summary>Elements in the tensor (the product of <see cref="Shape"/>).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>Bytes of the tensor's data.</summary>
    public long ByteCount => checked(ElementCount * WeightTypes.SizeOf(DType));

    /// <summary>The dtype as a safetensors header spells it: F32, BF16 or F16.</summary>
    public static string HeaderName(WeightType type) => type switch
    {
        WeightType.F32 => "F32",
        WeightType.BF16 => "BF16",
        WeightType.F16 => "F16",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown weight type"),
    };
}
