using Qwen2.Kernels;

namespace Qwen2.Native.Gguf;

/// <summary>The correspondence of GGUF tensor types and the engine's <see cref="WeightType"/>s.</summary>
public static class GgufTensorTypes
{
    /// <summary>The weight type a GGUF tensor type stores.</summary>
    public static WeightType ToWeightType(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => WeightType.F32,
        GgufTensorType.F16 => WeightType.F16,
        GgufTensorType.Q4_0 => WeightType.Q4_0,
        GgufTensorType.Q4_1 => WeightType.Q4_1,
        GgufTensorType.Q5_0 => WeightType.Q5_0,
        GgufTensorType.Q5_1 => WeightType.Q5_1,
        GgufTensorType.Q8_0 => WeightType.Q8_0,
        GgufTensorType.Q4_K => WeightType.Q4_K,
        GgufTensorType.Q5_K => WeightType.Q5_K,
        GgufTensorType.Q6_K => WeightType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown GGUF tensor type"),
    };

    /// <summary>The GGUF tensor type that stores <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">BF16, which this writer does not produce.</exception>
    public static GgufTensorType FromWeightType(WeightType type) => type switch
    {
        WeightType.F32 => GgufTensorType.F32,
        WeightType.F16 => GgufTensorType.F16,
        WeightType.Q4_0 => GgufTensorType.Q4_0,
        WeightType.Q4_1 => GgufTensorType.Q4_1,
        WeightType.Q5_0 => GgufTensorType.Q5_0,
        WeightType.Q5_1 => GgufTensorType.Q5_1,
        WeightType.Q8_0 => GgufTensorType.Q8_0,
        WeightType.Q4_K => GgufTensorType.Q4_K,
        WeightType.Q5_K => GgufTensorType.Q5_K,
        WeightType.Q6_K => GgufTensorType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no GGUF tensor type written for this weight type"),
    };
}
