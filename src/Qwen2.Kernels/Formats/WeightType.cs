namespace Qwen2.Kernels;

/// <summary>Element type of a weight matrix as stored; activations are always float32.</summary>
public enum WeightType
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>bfloat16: the upper 16 bits of a float32.</summary>
    BF16,
    /// <summary>IEEE binary16.</summary>
    F16,
}
