namespace Qwen2.Native.Gguf;

/// <summary>Element types of GGUF tensors that this writer produces (ggml's numbering).</summary>
public enum GgufTensorType : uint
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,
    /// <summary>IEEE binary16.</summary>
    F16 = 1,
}
