using System.Text.Json;
using Qwen2.Kernels;
using Qwen2.Native;

namespace Qwen2.Reference;

/// <summary>
/// One decoder layer's weights as float arrays, row-major [out, in]; biases null where the model has none (Qwen3),
/// <paramref name="QNorm"/> and <paramref name="KNorm"/> Qwen3's per-head RMSNorm weights, null for Qwen2;
/// <paramref name="Bo"/> o_proj's bias (Qwen3 with attention_bias only).
/// </summary>
public sealed record ReferenceLayer(
    float[] InputNorm, float[] Wq, float[]? Bq, float[] Wk, float[]? Bk, float[] Wv, float[]? Bv, float[] Wo,
    float[] PostNorm, float[] Gate, float[] Up, float[] Down, float[]? QNorm = null, float[]? KNorm = null, float[]? Bo = null);

/// <summary>
/// The hyper-parameters and float weights of a Qwen2 model, read into plain arrays (F32, BF16, F16 and the ggml block
/// types widened through <see cref="WeightTypes.ToSingle"/>) for <see cref="ReferenceForward"/>. Loading reads
/// config.json or GGUF metadata itself, so the reference shares no configuration code with the engine.
/// </summary>
public sealed record ReferenceModel(
    int Hidden, int Layers, int Heads, int KvHeads, int HeadDim, int Intermediate, int Vocab,
    double RopeTheta, double Eps, int? SlidingWindow, int MaxWindowLayers,
    float[] Embed, ReferenceLayer[] Blocks, float[] Norm, float[]? LmHead)
{
    /// <summary>
    /// Reads a Hugging Face checkpoint directory (config.json and safetensors). Names with the <c>model.</c> prefix, or
    /// the base model's without it (Qwen3-Embedding); no lm_head (null) where an untied checkpoint has none.
    /// </summary>
    public static ReferenceModel FromCheckpoint(string directory)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "config.json")));
        var c = doc.RootElement;
        int Int(string key) => c.GetProperty(key).GetInt32();
        bool Has(string key, out JsonElement e) => c.TryGetProperty(key, out e) && e.ValueKind != JsonValueKind.Null;
        int hidden = Int("hidden_size"), heads = Int("num_attention_heads");
        int kvHeads = Has("num_key_value_heads", out var kv) ? kv.GetInt32() : heads;
        int headDim = Has("head_dim", out var hd) ? hd.GetInt32() : hidden / heads;
        double theta = Has("rope_theta", out var rt) ? rt.GetDouble()
            : Has("rope_parameters", out var rp) ? rp.GetProperty("rope_theta").GetDouble() : 10000.0;
        double eps = Has("rms_norm_eps", out var e) ? e.GetDouble() : 1e-6;
        bool tied = Has("tie_word_embeddings", out var t) && t.GetBoolean();
        bool sliding = Has("use_sliding_window", out var us) && us.GetBoolean();
        int? window = sliding && Has("sliding_window", out var sw) ? sw.GetInt32() : null;
        int maxWindowLayers = Has("max_window_layers", out var mw) ? mw.GetInt32() : int.MaxValue;
        // Qwen3Config: q_norm/k_norm, and no biases unless attention_bias (which the engine refuses); Qwen2's always has them.
        string modelType = c.GetProperty("model_type").GetString()!;
        if (modelType is not ("qwen2" or "qwen3")) throw new InvalidDataException($"{directory}: model_type {modelType}");
        bool qwen3 = modelType == "qwen3";
        bool qwen3Bias = qwen3 && Has("attention_bias", out var ab) && ab.GetBoolean(); // q, k, v and o biases
        bool bias = !qwen3 || qwen3Bias;

        using var files = new CheckpointFiles(directory);
        float[]? ReadIf(bool present, string name) => present ? Read(name) : null;
        float[] Read(string name)
        {
            if (!files.TryGet(name, out var file, out var info)) throw new InvalidDataException($"{directory}: no tensor {name}");
            var values = new float[(int)info.Shape.Aggregate(1L, (a, d) => a * d)];
            unsafe { WeightTypes.ToSingle(file.WeightTypeOf(info), new ReadOnlySpan<byte>(file.Pointer(info), (int)(info.End - info.Begin)), values); }
            return values;
        }
        int layers = Int("num_hidden_layers");
        string prefix = files.TryGet("model.embed_tokens.weight", out _, out _) ? "model." : "";
        var blocks = new ReferenceLayer[layers];
        for (int i = 0; i < layers; i++)
        {
            string p = $"{prefix}layers.{i}.";
            blocks[i] = new ReferenceLayer(
                Read(p + "input_layernorm.weight"),
                Read(p + "self_attn.q_proj.weight"), ReadIf(bias, p + "self_attn.q_proj.bias"),
                Read(p + "self_attn.k_proj.weight"), ReadIf(bias, p + "self_attn.k_proj.bias"),
                Read(p + "self_attn.v_proj.weight"), ReadIf(bias, p + "self_attn.v_proj.bias"),
                Read(p + "self_attn.o_proj.weight"), Read(p + "post_attention_layernorm.weight"),
                Read(p + "mlp.gate_proj.weight"), Read(p + "mlp.up_proj.weight"), Read(p + "mlp.down_proj.weight"),
                ReadIf(qwen3, p + "self_attn.q_norm.weight"), ReadIf(qwen3, p + "self_attn.k_norm.weight"), ReadIf(qwen3Bias, p + "self_attn.o_proj.bias"));
        }
        float[] embed = Read(prefix + "embed_tokens.weight");
        return new ReferenceModel(hidden, layers, heads, kvHeads, headDim, Int("intermediate_size"), Int("vocab_size"),
            theta, eps, window, maxWindowLayers, embed, blocks, Read(prefix + "norm.weight"),
            tied ? embed : files.TryGet("lm_head.weight", out _, out _) ? Read("lm_head.weight") : null);
    }

    /// <summary>Reads a GGUF file of architecture qwen2 or qwen3 (any tensor type ggml and the engine share), dequantized.</summary>
    public static ReferenceModel FromGguf(string path)
    {
        var g = GgufReferenceFile.Read(path);
        string arch = g.String("general.architecture");
        if (arch is not ("qwen2" or "qwen3")) throw new InvalidDataException($"{path}: architecture {arch}, expected qwen2 or qwen3");
        bool qwen3 = arch == "qwen3"; // llama.cpp's LLM_ARCH_QWEN3: attn_q_norm / attn_k_norm, no biases
        int U(string key) => checked((int)g.UInt(arch + "." + key));
        int hidden = U("embedding_length"), heads = U("attention.head_count");
        int headDim = g.Kv.ContainsKey(arch + ".attention.key_length") ? U("attention.key_length") : hidden / heads;
        float[]? FloatsIf(bool present, string name) => present ? g.Floats(name) : null;
        bool bias = !qwen3 || g.Tensors.ContainsKey("blk.0.attn_q.bias"), oBias = qwen3 && g.Tensors.ContainsKey("blk.0.attn_output.bias");
        int layers = U("block_count");
        var blocks = new ReferenceLayer[layers];
        for (int i = 0; i < layers; i++)
        {
            string b = $"blk.{i}.";
            blocks[i] = new ReferenceLayer(
                g.Floats(b + "attn_norm.weight"),
                g.Floats(b + "attn_q.weight"), FloatsIf(bias, b + "attn_q.bias"),
                g.Floats(b + "attn_k.weight"), FloatsIf(bias, b + "attn_k.bias"),
                g.Floats(b + "attn_v.weight"), FloatsIf(bias, b + "attn_v.bias"),
                g.Floats(b + "attn_output.weight"), g.Floats(b + "ffn_norm.weight"),
                g.Floats(b + "ffn_gate.weight"), g.Floats(b + "ffn_up.weight"), g.Floats(b + "ffn_down.weight"),
                FloatsIf(qwen3, b + "attn_q_norm.weight"), FloatsIf(qwen3, b + "attn_k_norm.weight"), FloatsIf(oBias, b + "attn_output.bias"));
        }
        float[] embed = g.Floats("token_embd.weight");
        int vocab = checked((int)g.Tensors["token_embd.weight"].Dims[1]);
        return new ReferenceModel(hidden, layers, heads, U("attention.head_count_kv"), headDim, U("feed_forward_length"), vocab,
            g.Float(arch + ".rope.freq_base"), g.Float(arch + ".attention.layer_norm_rms_epsilon"), null, int.MaxValue,
            embed, blocks, g.Floats("output_norm.weight"), g.Tensors.ContainsKey("output.weight") ? g.Floats("output.weight") : embed);
    }
}
