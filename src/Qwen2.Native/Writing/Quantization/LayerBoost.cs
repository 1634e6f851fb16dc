namespace Qwen2.Native;

/// <summary>Which layers' attn_v and ffn_down a llama.cpp mix gives more bits than its default type.</summary>
internal enum LayerBoost
{
    /// <summary>None: every matrix takes the default type (q8_0, q4_0, q4_1, q5_0, q5_1, q5_k_s, q6_k, and the pure types).</summary>
    None,
    /// <summary>q4_k_s: Q5_K for attn_v of layers 0-3 and ffn_down of the first eighth of the layers.</summary>
    SmallK,
    /// <summary>q4_k_m and q5_k_m: Q6_K for attn_v and ffn_down of the layers use_more_bits picks.</summary>
    MediumK,
}
