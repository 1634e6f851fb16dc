namespace Qwen2.Native;

/// <summary>A format's names for the model's tensors: the one table the loader reads names from.</summary>
/// <param name="Embed">The token embedding.</param>
/// <param name="Norm">The final RMSNorm.</param>
/// <param name="LmHead">The output projection (absent when tied).</param>
/// <param name="LayerPrefix">The prefix of layer <c>i</c>'s names, with <c>{0}</c> for the index.</param>
/// <param name="Layer">Each layer tensor's name after the prefix.</param>
internal sealed record TensorNames(string Embed, string Norm, string LmHead, string LayerPrefix, IReadOnlyDictionary<LayerTensor, string> Layer)
{
    /// <summary>The name of <paramref name="tensor"/> in layer <paramref name="layer"/>.</summary>
    public string Of(int layer, LayerTensor tensor) =>
        string.Format(System.Globalization.CultureInfo.InvariantCulture, LayerPrefix, layer) + Layer[tensor];

    /// <summary>Hugging Face's Qwen2ForCausalLM (and Qwen3ForCausalLM) names.</summary>
    public static TensorNames HuggingFace { get; } = new("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.layers.{0}.",
        new Dictionary<LayerTensor, string>
        {
            [LayerTensor.AttentionNorm] = "input_layernorm.weight",
            [LayerTensor.Q] = "self_attn.q_proj.weight", [LayerTensor.QBias] = "self_attn.q_proj.bias",
            [LayerTensor.K] = "self_attn.k_proj.weight", [LayerTensor.KBias] = "self_attn.k_proj.bias",
            [LayerTensor.V] = "self_attn.v_proj.weight", [LayerTensor.VBias] = "self_attn.v_proj.bias",
            [LayerTensor.O] = "self_attn.o_proj.weight", [LayerTensor.OBias] = "self_attn.o_proj.bias",
            [LayerTensor.QNorm] = "self_attn.q_norm.weight", [LayerTensor.KNorm] = "self_attn.k_norm.weight",
            [LayerTensor.FfnNorm] = "post_attention_layernorm.weight",
            [LayerTensor.Gate] = "mlp.gate_proj.weight", [LayerTensor.Up] = "mlp.up_proj.weight", [LayerTensor.Down] = "mlp.down_proj.weight",
        });

    /// <summary>
    /// The base model's names, without the <c>model.</c> prefix: Qwen3-Embedding ships its Qwen3Model saved alone this
    /// way (and no lm_head), which transformers and sentence-transformers load as they are.
    /// </summary>
    public static TensorNames HuggingFaceBase { get; } = HuggingFace with { Embed = "embed_tokens.weight", Norm = "norm.weight", LayerPrefix = "layers.{0}." };

    /// <summary>The Hugging Face names <paramref name="source"/> uses: with the prefix, or the base model's where only those are there.</summary>
    public static TensorNames HuggingFaceIn(ITensorSource source) =>
        !source.TryGet(HuggingFace.Embed, out _) && source.TryGet(HuggingFaceBase.Embed, out _) ? HuggingFaceBase : HuggingFace;

    /// <summary>llama.cpp's GGUF names (LLM_TENSOR_NAMES in llama-arch.cpp), shared by qwen2 and the llama-style architectures.</summary>
    public static TensorNames Gguf { get; } = new("token_embd.weight", "output_norm.weight", "output.weight", "blk.{0}.",
        new Dictionary<LayerTensor, string>
        {
            [LayerTensor.AttentionNorm] = "attn_norm.weight",
            [LayerTensor.Q] = "attn_q.weight", [LayerTensor.QBias] = "attn_q.bias",
            [LayerTensor.K] = "attn_k.weight", [LayerTensor.KBias] = "attn_k.bias",
            [LayerTensor.V] = "attn_v.weight", [LayerTensor.VBias] = "attn_v.bias",
            [LayerTensor.O] = "attn_output.weight", [LayerTensor.OBias] = "attn_output.bias",
            [LayerTensor.QNorm] = "attn_q_norm.weight", [LayerTensor.KNorm] = "attn_k_norm.weight",
            [LayerTensor.FfnNorm] = "ffn_norm.weight",
            [LayerTensor.Gate] = "ffn_gate.weight", [LayerTensor.Up] = "ffn_up.weight", [LayerTensor.Down] = "ffn_down.weight",
        });
}
