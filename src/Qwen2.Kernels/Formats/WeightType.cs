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
    /// <summary>ggml Q8_0: blocks of 32 int8 with one binary16 scale (34 bytes).</summary>
    Q8_0,
    /// <summary>ggml Q4_0: blocks of 32 4-bit values minus 8 with one binary16 scale (18 bytes).</summary>
    Q4_0,
    /// <summary>ggml Q4_1: blocks of 32 4-bit values with a binary16 scale and minimum (20 bytes).</summary>
    Q4_1,
    /// <summary>ggml Q5_0: blocks of 32 5-bit values minus 16 with one binary16 scale (22 bytes).</summary>
    Q5_0,
    /// <summary>ggml Q5_1: blocks of 32 5-bit values with a binary16 scale and minimum (24 bytes).</summary>
    Q5_1,
    /// <summary>ggml Q4_K: super-blocks of 256 4-bit values in 8 sub-blocks with 6-bit scales and minimums (144 bytes).</summary>
    Q4_K,
    /// <summary>ggml Q5_K: super-blocks of 256 5-bit values in 8 sub-blocks with 6-bit scales and minimums (176 bytes).</summary>
    Q5_K,
    /// <summary>ggml Q6_K: super-blocks of 256 6-bit values minus 32 in 16 sub-blocks with int8 scales (210 bytes).</summary>
    Q6_K,
}
