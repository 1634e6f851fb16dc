namespace Qwen2.Native.Gguf;

/// <summary>Element types of GGUF tensors that this writer produces (ggml's numbering, ggml_type).</summary>
public enum GgufTensorType : uint
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,
    /// <summary>IEEE binary16.</summary>
    F16 = 1,
    /// <summary>ggml Q4_0 blocks of 32.</summary>
    Q4_0 = 2,
    /// <summary>ggml Q4_1 blocks of 32.</summary>
    Q4_1 = 3,
    /// <summary>ggml Q5_0 blocks of 32.</summary>
    Q5_0 = 6,
    /// <summary>ggml Q5_1 blocks of 32.</summary>
    Q5_1 = 7,
    /// <summary>ggml Q8_0 blocks of 32.</summary>
    Q8_0 = 8,
    /// <summary>ggml Q4_K super-blocks of 256.</summary>
    Q4_K = 12,
    /// <summary>ggml Q5_K super-blocks of 256.</summary>
    Q5_K = 13,
    /// <summary>ggml Q6_K super-blocks of 256.</summary>
    Q6_K = 14,
}
