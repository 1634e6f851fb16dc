namespace Qwen2.Native;

/// <summary>The GGUF architectures the engine runs.</summary>
/// <remarks>
/// qwen2 tensors are stored in Hugging Face's order, not permuted: llama.cpp's convert_hf_to_gguf.py permutes
/// q_proj/k_proj only in <c>LlamaModel.modify_tensors</c> (LlamaModel.permute), because the llama graph applies RoPE to
/// interleaved pairs (LLAMA_ROPE_TYPE_NORM); its <c>Qwen2Model</c> converter does not override or inherit that, and
/// llama-model.cpp's <c>llama_model_rope_type</c> gives LLM_ARCH_QWEN2 LLAMA_ROPE_TYPE_NEOX, the rotate-half RoPE
/// Hugging Face's Qwen2 uses, so the weights go to the same kernels as a safetensors checkpoint's. The bit-identical
/// logits of an exported F32 GGUF and its safetensors checkpoint (GgufModelTests) rest on this.
/// </remarks>
internal static class GgufArchitectures
{
    private static readonly Dictionary<string, GgufArchitecture> Table = new(StringComparer.Ordinal)
    {
        ["qwen2"] = new GgufArchitecture("qwen2", TensorNames.Gguf),
        // LLM_ARCH_QWEN3: the same names plus attn_q_norm / attn_k_norm, no biases, NEOX RoPE as qwen2.
        ["qwen3"] = new GgufArchitecture("qwen3", TensorNames.Gguf),
    };

    /// <summary>The architecture <paramref name="name"/>.</summary>
    /// <exception cref="CheckpointException">It is not one the engine runs.</exception>
    public static GgufArchitecture Get(string name, string path) => Table.TryGetValue(name, out var a) ? a
        : throw new CheckpointException(path, $"is \"{name}\"; this engine runs {string.Join(", ", Table.Keys.Select(k => $"\"{k}\""))}", field: "general.architecture");
}
