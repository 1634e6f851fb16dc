namespace Qwen2.Native;

/// <summary>How a model runs.</summary>
public sealed record ModelOptions
{
    /// <summary>Threads for matrix products and attention, the caller's included; null means <see cref="Environment.ProcessorCount"/>. Logits are bit-identical for any count.</summary>
    public int? Threads { get; init; }

    /// <summary>Capacity in tokens of caches that <c>Forward(..., useCache: true)</c> creates itself (capped by max_position_embeddings, raised to the prompt's length).</summary>
    public int DefaultCacheCapacity { get; init; } = 4096;

    /// <summary>
    /// Quantize a float checkpoint's matrices at load to this block-quantized type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
    /// Q5_K, Q6_K) with llama.cpp's reference algorithms, in memory the model owns, instead of reading the mapped
    /// floats. Norms and biases stay float32; the lm_head (and a tied embedding) gets Q6_K or Q8_0 and K-quants fall back
    /// for rows that are not whole super-blocks, as in llama.cpp's file of that type. Null (the default) reads the
    /// weights as stored.
    /// </summary>
    public Kernels.WeightType? Quantize { get; init; }

    /// <summary>With <see cref="Quantize"/> a K-quant: give attn_v and ffn_down llama.cpp's _s or _m extra bits, as its files of that mix have (tests compare against them).</summary>
    internal LayerBoost QuantizeBoost { get; init; }
}
