namespace Qwen2.Kernels;

/// <summary>
/// Format of a weight matrix as stored; activations are always float32. Each format has a block layout
/// (<see cref="WeightTypes.BlockSize"/> elements in <see cref="WeightTypes.BlockBytes"/> bytes) and decides its own dot product.
/// </summary>
public enum WeightType
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>bfloat16: the upper 16 bits of a float32.</summary>
    BF16,
    /// <summary>IEEE binary16.</summary>
    F16,
}
