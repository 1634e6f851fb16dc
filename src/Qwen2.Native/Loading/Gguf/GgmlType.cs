namespace Qwen2.Native;

/// <summary>
/// Tensor element types of GGUF files, numbered as ggml's <c>enum ggml_type</c> in ggml.h (gaps are ids ggml retired:
/// 4 and 5 were Q4_2/Q4_3, 31 to 33 and 36 to 38 the repacked Q4_0_x_x / IQ4_NL_x_x layouts, no longer in files).
/// Which of them the engine computes with is <see cref="GgufFile.WeightTypeOf"/>'s business.
/// </summary>
public enum GgmlType : uint
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,
    /// <summary>IEEE binary16.</summary>
    F16 = 1,
    /// <summary>32 4-bit values and a binary16 scale.</summary>
    Q4_0 = 2,
    /// <summary>32 4-bit values, a binary16 scale and minimum.</summary>
    Q4_1 = 3,
    /// <summary>32 5-bit values and a binary16 scale.</summary>
    Q5_0 = 6,
    /// <summary>32 5-bit values, a binary16 scale and minimum.</summary>
    Q5_1 = 7,
    /// <summary>32 int8 values and a binary16 scale.</summary>
    Q8_0 = 8,
    /// <summary>32 int8 values, a binary16 scale and sum (activations only).</summary>
    Q8_1 = 9,
    /// <summary>2-bit K-quant super-blocks of 256.</summary>
    Q2_K = 10,
    /// <summary>3-bit K-quant super-blocks of 256.</summary>
    Q3_K = 11,
    /// <summary>4-bit K-quant super-blocks of 256.</summary>
    Q4_K = 12,
    /// <summary>5-bit K-quant super-blocks of 256.</summary>
    Q5_K = 13,
    /// <summary>6-bit K-quant super-blocks of 256.</summary>
    Q6_K = 14,
    /// <summary>8-bit K-quant super-blocks of 256 (activations only).</summary>
    Q8_K = 15,
    /// <summary>i-quant, 2.06 bits a weight.</summary>
    IQ2_XXS = 16,
    /// <summary>i-quant, 2.31 bits a weight.</summary>
    IQ2_XS = 17,
    /// <summary>i-quant, 3.06 bits a weight.</summary>
    IQ3_XXS = 18,
    /// <summary>i-quant, 1.56 bits a weight.</summary>
    IQ1_S = 19,
    /// <summary>i-quant, 4.5 bits a weight, non-linear, blocks of 32.</summary>
    IQ4_NL = 20,
    /// <summary>i-quant, 3.44 bits a weight.</summary>
    IQ3_S = 21,
    /// <summary>i-quant, 2.5 bits a weight.</summary>
    IQ2_S = 22,
    /// <summary>i-quant, 4.25 bits a weight.</summary>
    IQ4_XS = 23,
    /// <summary>int8.</summary>
    I8 = 24,
    /// <summary>int16.</summary>
    I16 = 25,
    /// <summary>int32.</summary>
    I32 = 26,
    /// <summary>int64.</summary>
    I64 = 27,
    /// <summary>IEEE float64.</summary>
    F64 = 28,
    /// <summary>i-quant, 1.75 bits a weight.</summary>
    IQ1_M = 29,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
    /// <summary>ternary, 1.69 bits a weight.</summary>
    TQ1_0 = 34,
    /// <summary>ternary, 2.06 bits a weight.</summary>
    TQ2_0 = 35,
    /// <summary>microscaling FP4, blocks of 32 with an E8M0 scale.</summary>
    MXFP4 = 39,
}
