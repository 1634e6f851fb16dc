using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// The architecture of a synthetic (random-weight) Qwen2 checkpoint: the real dimensions of a published model,
/// or a tiny one for tests. Head dimension is hidden_size / num_attention_heads, as in every Qwen2 release, unless
/// <paramref name="ExplicitHeadDim"/> sets it (Qwen3: 128 whatever the width).
/// </summary>
/// <param name="Name">Short name, e.g. <c>qwen2-0.5b</c>.</param>
/// <param name="HiddenSize">Width of the residual stream.</param>
/// <param name="NumHiddenLayers">Decoder layers.</param>
/// <param name="NumAttentionHeads">Query heads.</param>
/// <param name="NumKeyValueHeads">Key/value heads.</param>
/// <param name="IntermediateSize">Width of the MLP's inner layer.</param>
/// <param name="VocabSize">Rows of the embedding (and of lm_head).</param>
/// <param name="TieWordEmbeddings">Whether lm_head reuses the embedding (no <c>lm_head.weight</c> tensor).</param>
/// <param name="MaxPositionEmbeddings">Longest context the config declares.</param>
/// <param name="ModelType">The config's <c>model_type</c>: <c>qwen2</c> (q/k/v biases) or <c>qwen3</c> (no biases; q_norm and k_norm).</param>
/// <param name="ExplicitHeadDim">The config's <c>head_dim</c>, or 0 for hidden_size / num_attention_heads.</param>
/// <param name="AttentionBias">Qwen3's <c>attention_bias</c>: q, k, v and o projections with biases (Qwen2 always has q/k/v biases).</param>
/// <param name="Embedding">
/// An embedding model laid out as Qwen3-Embedding ships: the base model's tensors without the <c>model.</c> prefix and
/// no lm_head, with sentence-transformers' files (modules.json, a lasttoken Pooling module, Normalize, and the "query"
/// prompt).
/// </param>
public sealed record SyntheticShape(
    string Name, int HiddenSize, int NumHiddenLayers, int NumAttentionHeads, int NumKeyValueHeads,
    int IntermediateSize, int VocabSize, bool TieWordEmbeddings, int MaxPositionEmbeddings = 32768,
    string ModelType = "qwen2", int ExplicitHeadDim = 0, bool AttentionBias = false, bool Embedding = false)
{
    /// <summary>A two-layer model with the real Qwen2 vocabulary, so the real tokenizer works with it.</summary>
    public static SyntheticShape Tiny { get; } = new("tiny", 64, 2, 4, 2, 176, 151936, true);
    /// <summary>Qwen2-0.5B / Qwen2.5-0.5B dimensions.</summary>
    public static SyntheticShape Qwen2_0_5B { get; } = new("qwen2-0.5b", 896, 24, 14, 2, 4864, 151936, true);
    /// <summary>Qwen2-1.5B / Qwen2.5-1.5B dimensions.</summary>
    public static SyntheticShape Qwen2_1_5B { get; } = new("qwen2-1.5b", 1536, 28, 12, 2, 8960, 151936, true);
    /// <summary>Qwen2.5-3B dimensions.</summary>
    public static SyntheticShape Qwen2_5_3B { get; } = new("qwen2.5-3b", 2048, 36, 16, 2, 11008, 151936, true);
    /// <summary>Qwen2-7B / Qwen2.5-7B dimensions (untied: a separate <c>lm_head.weight</c>).</summary>
    public static SyntheticShape Qwen2_7B { get; } = new("qwen2-7b", 3584, 28, 28, 4, 18944, 152064, false);

    /// <summary>A two-layer Qwen3 model with the real vocabulary; its head dimension (32) is not hidden / heads (16).</summary>
    public static SyntheticShape TinyQwen3 { get; } = new("tiny-qwen3", 64, 2, 4, 2, 192, 151936, true, 40960, "qwen3", 32);
    /// <summary>Qwen3-0.6B dimensions (q is 2048 wide on a 1024-wide residual stream).</summary>
    public static SyntheticShape Qwen3_0_6B { get; } = new("qwen3-0.6b", 1024, 28, 16, 8, 3072, 151936, true, 40960, "qwen3", 128);
    /// <summary>Qwen3-1.7B dimensions.</summary>
    public static SyntheticShape Qwen3_1_7B { get; } = new("qwen3-1.7b", 2048, 28, 16, 8, 6144, 151936, true, 40960, "qwen3", 128);
    /// <summary>Qwen3-4B dimensions.</summary>
    public static SyntheticShape Qwen3_4B { get; } = new("qwen3-4b", 2560, 36, 32, 8, 9728, 151936, true, 40960, "qwen3", 128);
    /// <summary>Qwen3-8B dimensions (untied).</summary>
    public static SyntheticShape Qwen3_8B { get; } = new("qwen3-8b", 4096, 36, 32, 8, 12288, 151936, false, 40960, "qwen3", 128);

    /// <summary>A two-layer Qwen3-Embedding model with the real vocabulary (head_dim 32 on hidden 64, as <see cref="TinyQwen3"/>).</summary>
    public static SyntheticShape TinyQwen3Embedding { get; } = TinyQwen3 with { Name = "tiny-qwen3-embedding", MaxPositionEmbeddings = 32768, Embedding = true };
    /// <summary>Qwen3-Embedding-0.6B dimensions (Qwen3-0.6B's, without the head).</summary>
    public static SyntheticShape Qwen3Embedding_0_6B { get; } = Qwen3_0_6B with { Name = "qwen3-embedding-0.6b", MaxPositionEmbeddings = 32768, Embedding = true };
    /// <summary>Qwen3-Embedding-4B dimensions.</summary>
    public static SyntheticShape Qwen3Embedding_4B { get; } = Qwen3_4B with { Name = "qwen3-embedding-4b", MaxPositionEmbeddings = 32768, Embedding = true };
    /// <summary>Qwen3-Embedding-8B dimensions (untied in its config; it ships no head).</summary>
    public static SyntheticShape Qwen3Embedding_8B { get; } = Qwen3_8B with { Name = "qwen3-embedding-8b", MaxPositionEmbeddings = 32768, Embedding = true };

    /// <summary>Every named shape, Qwen2, Qwen3 then Qwen3-Embedding, smallest first.</summary>
    public static IReadOnlyList<SyntheticShape> All { get; } =
        [Tiny, Qwen2_0_5B, Qwen2_1_5B, Qwen2_5_3B, Qwen2_7B, TinyQwen3, Qwen3_0_6B, Qwen3_1_7B, Qwen3_4B, Qwen3_8B,
         TinyQwen3Embedding, Qwen3Embedding_0_6B, Qwen3Embedding_4B, Qwen3Embedding_8B];

    /// <summary>Whether the layers have Qwen3's per-head q/k RMSNorm and no projection biases.</summary>
    public bool IsQwen3 => ModelType == "qwen3";

    /// <summary>Finds a named shape (case-insensitive).</summary>
    public static bool TryGet(string name, out SyntheticShape shape)
    {
        shape = All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))!;
        return shape is not null;
    }

    /// <summary>Finds a named shape (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No shape has that name; the message lists the names.</exception>
    public static SyntheticShape Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryGet(name, out var shape) ? shape
            : throw new ArgumentException($"unknown shape \"{name}\"; known shapes are {string.Join(", ", All.Select(s => s.Name))}", nameof(name));
    }

    /// <summary>Dimension of one attention head.</summary>
    public int HeadDim => ExplicitHeadDim > 0 ? ExplicitHeadDim : HiddenSize / NumAttentionHeads;

    /// <summary>Checks the dimensions make a loadable Qwen2 model.</summary>
    /// <exception cref="ArgumentException">A dimension is not positive, the heads do not divide evenly, or the head dimension is odd.</exception>
    public void Validate()
    {
        void Positive(string field, int v)
        {
            if (v <= 0) throw new ArgumentException($"shape '{Name}': {field} is {v}; it must be positive", field);
        }
        Positive("hidden_size", HiddenSize);
        Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads);
        Positive("num_key_value_heads", NumKeyValueHeads);
        Positive("intermediate_size", IntermediateSize);
        Positive("vocab_size", VocabSize);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        if (ModelType is not ("qwen2" or "qwen3"))
            throw new ArgumentException($"shape '{Name}': model_type \"{ModelType}\"; expected \"qwen2\" or \"qwen3\"", "model_type");
        if (ExplicitHeadDim < 0) throw new ArgumentException($"shape '{Name}': head_dim is {ExplicitHeadDim}; it must be positive", "head_dim");
        if (ExplicitHeadDim == 0 && HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"shape '{Name}': hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}", "num_attention_heads");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new ArgumentException($"shape '{Name}': num_key_value_heads {NumKeyValueHeads} does not divide num_attention_heads {NumAttentionHeads}", "num_key_value_heads");
        if (HeadDim % 2 != 0) throw new ArgumentException($"shape '{Name}': head dimension {HeadDim} is odd; RoPE needs an even one", "num_attention_heads");
        if (Embedding && !IsQwen3) throw new ArgumentException($"shape '{Name}': an embedding shape is Qwen3-Embedding, model_type \"qwen3\"", "model_type");
    }

    /// <summary>Every tensor of the checkpoint with its Hugging Face name and dimensions, in file order.</summary>
    public IReadOnlyList<(string Name, long[] Shape)> TensorShapes()
    {
        long h = HiddenSize, q = (long)NumAttentionHeads * HeadDim, kv = (long)NumKeyValueHeads * HeadDim, inter = IntermediateSize;
        string model = Embedding ? "" : "model."; // Qwen3-Embedding saves its base model alone
        var list = new List<(string, long[])> { (model + "embed_tokens.weight", [VocabSize, h]) };
        for (int i = 0; i < NumHiddenLayers; i++)
        {
            string p = $"{model}layers.{i}.";
            list.Add((p + "input_layernorm.weight", [h]));
            bool qkvBias = !IsQwen3 || AttentionBias;
            list.Add((p + "self_attn.q_proj.weight", [q, h]));
            if (qkvBias) list.Add((p + "self_attn.q_proj.bias", [q]));
            list.Add((p + "self_attn.k_proj.weight", [kv, h]));
            if (qkvBias) list.Add((p + "self_attn.k_proj.bias", [kv]));
            list.Add((p + "self_attn.v_proj.weight", [kv, h]));
            if (qkvBias) list.Add((p + "self_attn.v_proj.bias", [kv]));
            list.Add((p + "self_attn.o_proj.weight", [h, q]));
            if (IsQwen3 && AttentionBias) list.Add((p + "self_attn.o_proj.bias", [h]));
            if (IsQwen3)
            {
                list.Add((p + "self_attn.q_norm.weight", [HeadDim]));
                list.Add((p + "self_attn.k_norm.weight", [HeadDim]));
            }
            list.Add((p + "post_attention_layernorm.weight", [h]));
            list.Add((p + "mlp.gate_proj.weight", [inter, h]));
            list.Add((p + "mlp.up_proj.weight", [inter, h]));
            list.Add((p + "mlp.down_proj.weight", [h, inter]));
        }
        list.Add((model + "norm.weight", [h]));
        if (!TieWordEmbeddings && !Embedding) list.Add(("lm_head.weight", [VocabSize, h]));
        return list;
    }

    /// <summary>Parameters stored in the checkpoint (a tied lm_head is counted once, as Hugging Face counts it).</summary>
    public long ParameterCount => TensorShapes().Sum(t => t.Shape.Aggregate(1L, (a, d) => a * d));

    /// <summary>Bytes of tensor data for <paramref name="dtype"/> (the safetensors header adds a few kilobytes).</summary>
    public long WeightBytes(WeightType dtype) => ParameterCount * WeightTypes.SizeOf(dtype);
}
