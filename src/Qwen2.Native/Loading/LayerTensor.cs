namespace Qwen2.Native;

/// <summary>The tensors of one decoder layer, whatever a format calls them.</summary>
internal enum LayerTensor
{
    AttentionNorm, Q, QBias, K, KBias, V, VBias, O, FfnNorm, Gate, Up, Down,
    /// <summary>Qwen3's per-head RMSNorm weights of q and k ([head_dim] each).</summary>
    QNorm, KNorm,
    /// <summary>Qwen3's o_proj bias ([hidden]), present only with <c>attention_bias</c>.</summary>
    OBias,
}
