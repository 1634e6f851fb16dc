using Qwen2.Kernels;

namespace Qwen2.Native.Gguf;

/// <summary>llama.cpp's quantization mixes: the default type of each, and the type each Qwen2 tensor gets in it.</summary>
public static class GgufQuantization
{
    /// <summary>Whether <paramref name="type"/> is a quantization mix rather than F32 or F16.</summary>
    public static bool IsQuantized(GgufFileType type) => type is not (GgufFileType.F32 or GgufFileType.F16);

    /// <summary>The type most matrices of the mix get (llama.cpp's llama_ftype_get_default_type).</summary>
    /// <exception cref="ArgumentOutOfRangeException">F32, F16 or an unknown value.</exception>
    public static WeightType DefaultType(GgufFileType type) => type switch
    {
        GgufFileType.Q4_0 => WeightType.Q4_0,
        GgufFileType.Q4_1 => WeightType.Q4_1,
        GgufFileType.Q5_0 => WeightType.Q5_0,
        GgufFileType.Q5_1 => WeightType.Q5_1,
        GgufFileType.Q8_0 => WeightType.Q8_0,
        GgufFileType.Q4_K_S or GgufFileType.Q4_K_M => WeightType.Q4_K,
        GgufFileType.Q5_K_S or GgufFileType.Q5_K_M => WeightType.Q5_K,
        GgufFileType.Q6_K => WeightType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a quantization mix"),
    };

    /// <summary>
    /// The type of tensor <paramref name="name"/> (GGUF name, <paramref name="shape"/> outermost first) in mix
    /// <paramref name="type"/> for a model of <paramref name="layers"/> layers, by llama.cpp's rules: norms and biases
    /// F32; output.weight (and a tied token_embd.weight) Q6_K, or Q8_0; attn_v and ffn_down of some layers with more
    /// bits in the _s and _m mixes; K-quants whose rows are not whole super-blocks of 256 fall back to Q5_0, Q5_1 or Q8_0.
    /// </summary>
    public static WeightType TensorType(GgufFileType type, string name, IReadOnlyList<long> shape, int layers, bool tiedEmbeddings)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        var boost = type switch
        {
            GgufFileType.Q4_K_S => LayerBoost.SmallK,
            GgufFileType.Q4_K_M or GgufFileType.Q5_K_M => LayerBoost.MediumK,
            _ => LayerBoost.None,
        };
        return TensorTypeRules.Choose(DefaultType(type), boost, name, shape.Count == 0 ? 0 : shape[^1], shape.Count, layers, tiedEmbeddings);
    }
}
