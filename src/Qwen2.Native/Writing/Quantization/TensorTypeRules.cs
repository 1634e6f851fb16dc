using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// llama.cpp's per-tensor type choice for a quantization mix, for the tensors of a Qwen2 model (GGUF names), read from
/// ggml-org/llama.cpp src/llama-quant.cpp (stored commit 007dbbf3fd17eefe9b47fee45f48f7ba5e62b714: tensor_allows_quantization,
/// llama_tensor_get_type_impl, tensor_type_fallback, llama_ftype_get_default_type). Only the branches a dense,
/// non-Falcon, non-70B model reaches for the mixes q8_0, q4_0, q4_1, q5_0, q5_1, q4_k_s, q4_k_m, q5_k_s, q5_k_m and
/// q6_k are kept; the n_gqa rules of llama.cpp apply only to its 2- and 3-bit mixes, so none is reached here.
/// </summary>
internal static class TensorTypeRules
{
    /// <summary>
    /// The type of tensor <paramref name="name"/> (innermost dimension <paramref name="cols"/>, <paramref name="dims"/>
    /// dimensions) in a model of <paramref name="layers"/> layers: 1-D tensors and norms stay F32; output.weight, and
    /// token_embd.weight when the embedding is tied, get Q6_K (Q8_0 for a Q8_0 mix or a row that is not whole default
    /// blocks); attn_v and ffn_down get <paramref name="boost"/>'s extra bits; then a K-quant whose row is not whole
    /// 256-element super-blocks falls back to Q5_0 (Q4_K), Q5_1 (Q5_K) or Q8_0 (Q6_K), and to F16 if that does not fit either.
    /// </summary>
    /// <exception cref="ArgumentException">A 32-element type does not divide the row (llama.cpp has no fallback for it either).</exception>
    public static WeightType Choose(WeightType defaultType, LayerBoost boost, string name, long cols, int dims, int layers, bool tiedEmbeddings)
    {
        if (!WeightTypes.IsQuantized(defaultType)) throw new ArgumentException($"{defaultType} is not a quantized type", nameof(defaultType));
        // tensor_allows_quantization: 2-D (and 3-D) tensors named *weight, norms excepted.
        if (dims < 2 || !name.EndsWith("weight", StringComparison.Ordinal) || name.Contains("_norm.weight", StringComparison.Ordinal)) return WeightType.F32;
        var type = defaultType;
        bool output = name == "output.weight" || (tiedEmbeddings && name == "token_embd.weight");
        if (output)
            type = defaultType == WeightType.Q8_0 || cols % WeightTypes.BlockSize(defaultType) != 0 ? WeightType.Q8_0 : WeightType.Q6_K;
        else if (name.Contains("attn_v.weight", StringComparison.Ordinal))
        {
            int i = Layer(name);
            if (boost == LayerBoost.MediumK && UseMoreBits(i, layers)) type = WeightType.Q6_K;
            else if (boost == LayerBoost.SmallK && i < 4) type = WeightType.Q5_K;
        }
        else if (name.Contains("ffn_down", StringComparison.Ordinal))
        {
            int i = Layer(name);
            if (boost == LayerBoost.MediumK && UseMoreBits(i, layers)) type = WeightType.Q6_K;
            else if (boost == LayerBoost.SmallK && i < layers / 8) type = WeightType.Q5_K;
        }
        return Fallback(type, cols, name);
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers, and every third layer between.</summary>
    public static bool UseMoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    private static WeightType Fallback(WeightType type, long cols, string name)
    {
        if (cols % WeightTypes.BlockSize(type) == 0) return type;
        var fallback = type switch
        {
            WeightType.Q4_K => WeightType.Q5_0,
            WeightType.Q5_K => WeightType.Q5_1,
            WeightType.Q6_K => WeightType.Q8_0,
            _ => throw new ArgumentException($"tensor '{name}': rows of {cols} are not whole {type} blocks of {WeightTypes.BlockSize(type)}, and {type} has no fallback", nameof(cols)),
        };
        return cols % WeightTypes.BlockSize(fallback) == 0 ? fallback : WeightType.F16;
    }

    private static int Layer(string name)
    {
        // "blk.N." — the counters llama.cpp keeps run in layer order for one attn_v and one ffn_down per layer.
        if (name.StartsWith("blk.", StringComparison.Ordinal))
        {
            int dot = name.IndexOf('.', 4);
            if (dot > 4 && int.TryParse(name.AsSpan(4, dot - 4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i)) return i;
        }
        throw new ArgumentException($"tensor '{name}' names no layer (blk.N.)", nameof(name));
    }
}
