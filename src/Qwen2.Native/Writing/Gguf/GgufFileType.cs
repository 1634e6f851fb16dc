namespace Qwen2.Native.Gguf;

/// <summary>
/// What the matrices of a written GGUF file hold: a float type or one of llama.cpp's quantization mixes (which type
/// each tensor gets is <see cref="GgufQuantization.TensorType"/>); the values are llama.cpp's <c>general.file_type</c> (llama_ftype).
/// </summary>
public enum GgufFileType
{
    /// <summary>Every tensor float32 (llama.cpp's ALL_F32).</summary>
    F32 = 0,
    /// <summary>Matrices float16, norms and biases float32 (llama.cpp's MOSTLY_F16).</summary>
    F16 = 1,
    /// <summary>llama.cpp's q4_0: matrices Q4_0, the output matrix Q6_K.</summary>
    Q4_0 = 2,
    /// <summary>llama.cpp's q4_1: matrices Q4_1, the output matrix Q6_K.</summary>
    Q4_1 = 3,
    /// <summary>llama.cpp's q8_0: every matrix Q8_0.</summary>
    Q8_0 = 7,
    /// <summary>llama.cpp's q5_0: matrices Q5_0, the output matrix Q6_K.</summary>
    Q5_0 = 8,
    /// <summary>llama.cpp's q5_1: matrices Q5_1, the output matrix Q6_K.</summary>
    Q5_1 = 9,
    /// <summary>llama.cpp's q4_k_s: matrices Q4_K, early attn_v and ffn_down Q5_K, the output matrix Q6_K.</summary>
    Q4_K_S = 14,
    /// <summary>llama.cpp's q4_k_m: matrices Q4_K, attn_v and ffn_down of the use_more_bits layers Q6_K, the output matrix Q6_K.</summary>
    Q4_K_M = 15,
    /// <summary>llama.cpp's q5_k_s: matrices Q5_K, the output matrix Q6_K.</summary>
    Q5_K_S = 16,
    /// <summary>llama.cpp's q5_k_m: matrices Q5_K, attn_v and ffn_down of the use_more_bits layers Q6_K, the output matrix Q6_K.</summary>
    Q5_K_M = 17,
    /// <summary>llama.cpp's q6_k: every matrix Q6_K.</summary>
    Q6_K = 18,
}
