namespace Qwen2.Native.Gguf;

/// <summary>Element type of the 2-D weights in an exported GGUF file; the values are llama.cpp's <c>general.file_type</c>.</summary>
public enum GgufFileType
{
    /// <summary>Every tensor float32 (llama.cpp's ALL_F32).</summary>
    F32 = 0,
    /// <summary>Matrices float16, norms and biases float32 (llama.cpp's MOSTLY_F16).</summary>
    F16 = 1,
}
