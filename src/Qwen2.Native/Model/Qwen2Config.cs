using System.Globalization;
using System.Text.Json;

namespace Qwen2.Native;

/// <summary>
/// The fields of a Hugging Face <c>config.json</c> that Qwen2 and Qwen3 use, with Hugging Face's <c>Qwen2Config</c>
/// (or <c>Qwen3Config</c>) defaults where a field is absent. Both the classic layout (<c>rope_theta</c>) and the transformers 5 layout
/// (<c>rope_parameters</c>, <c>layer_types</c>) are read.
/// </summary>
public sealed record Qwen2Config
{
    /// <summary>The architecture: <c>qwen2</c> (Qwen2, Qwen2.5) or <c>qwen3</c>.</summary>
    public string ModelType { get; init; } = "qwen2";
    /// <summary>Whether q_proj, k_proj and v_proj carry biases: always for qwen2, <c>attention_bias</c> (default false) for qwen3.</summary>
    public bool AttentionBias { get; init; } = true;
    /// <summary>Whether o_proj carries a bias: never for qwen2, <c>attention_bias</c> for qwen3.</summary>
    public bool OProjBias { get; init; }
    /// <summary>Whether each query and key head is RMS-normalised (Qwen3's q_norm and k_norm) before RoPE.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public int HiddenSize { get; init; } = 4096;
    /// <summary>Width of the MLP's inner layer.</summary>
    public int IntermediateSize { get; init; } = 22016;
    /// <summary>Number of decoder layers.</summary>
    public int NumHiddenLayers { get; init; } = 32;
    /// <summary>Query heads.</summary>
    public int NumAttentionHeads { get; init; } = 32;
    /// <summary>Key/value heads (grouped-query attention); equals <see cref="NumAttentionHeads"/> for plain multi-head attention.</summary>
    public int NumKeyValueHeads { get; init; } = 32;
    /// <summary>Dimension of one head: the config's <c>head_dim</c>, else hidden_size / num_attention_heads.</summary>
    public int HeadDim { get; init; } = 128;
    /// <summary>Vocabulary size: rows of the embedding and of the lm_head.</summary>
    public int VocabSize { get; init; } = 151936;
    /// <summary>Longest context the model was trained for.</summary>
    public int MaxPositionEmbeddings { get; init; } = 32768;
    /// <summary>RoPE base frequency.</summary>
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>RMSNorm epsilon, inside the square root.</summary>
    public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>Whether lm_head reuses <c>model.embed_tokens.weight</c> (default false, as in Hugging Face).</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Whether sliding-window attention is on for the layers <see cref="LayerUsesSlidingWindow"/> names.</summary>
    public bool UseSlidingWindow { get; init; }
    /// <summary>Keys a sliding-window layer sees, the query's own included.</summary>
    public int SlidingWindow { get; init; } = 4096;
    /// <summary>Layers below this index use full attention when sliding windows are on.</summary>
    public int MaxWindowLayers { get; init; } = 28;
    /// <summary>Per-layer attention kinds from <c>layer_types</c> ("full_attention" or "sliding_attention"), when the config lists them.</summary>
    public IReadOnlyList<string>? LayerTypes { get; init; }
    /// <summary>Beginning-of-sequence token id, if any.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token ids (a config may list several).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
    /// <summary>The dtype the checkpoint declares (<c>torch_dtype</c> or <c>dtype</c>), for information only.</summary>
    public string? TorchDtype { get; init; }
    /// <summary>
    /// Whether the checkpoint is an embedding model that pools its last token (Qwen3-Embedding: sentence-transformers'
    /// lasttoken Pooling module beside config.json, or a GGUF file's <c>pooling_type</c> LAST). Such a model has no
    /// lm_head: it gives hidden states, not logits. Set by the loader, not read from config.json.
    /// </summary>
    public bool LastTokenPooling { get; init; }

    /// <summary>Whether layer <paramref name="layer"/> attends over a sliding window of <see cref="SlidingWindow"/> keys.</summary>
    public bool LayerUsesSlidingWindow(int layer)
    {
        if (!UseSlidingWindow) return false;
        return LayerTypes is not null ? LayerTypes[layer] == "sliding_attention" : layer >= MaxWindowLayers;
    }

    /// <summary>Reads and checks a <c>config.json</c>.</summary>
    /// <exception cref="CheckpointException">The file is missing or malformed, is not a qwen2 config, or a field is invalid.</exception>
    public static Qwen2Config Load(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found (a checkpoint directory needs config.json)");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses and checks the text of a <c>config.json</c>; <paramref name="source"/> names it in errors.</summary>
    public static Qwen2Config Parse(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new CheckpointException(source, $"malformed JSON: {e.Message}", inner: e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointException(source, "the config must be a JSON object");
            var r = new JsonFieldReader(root, source);
            string? modelType = r.String("model_type");
            if (modelType is null) throw new CheckpointException(source, "missing; this engine runs model_type \"qwen2\" or \"qwen3\"", field: "model_type");
            if (modelType is not ("qwen2" or "qwen3"))
                throw new CheckpointException(source, $"is \"{modelType}\"; this engine runs model_type \"qwen2\" (Qwen2, Qwen2.5) or \"qwen3\" (dense Qwen3)", field: "model_type");
            bool qwen3 = modelType == "qwen3";
            string act = r.String("hidden_act") ?? "silu";
            if (act != "silu") throw new CheckpointException(source, $"is \"{act}\"; Qwen2 uses \"silu\"", field: "hidden_act");

            int hidden = r.Int("hidden_size") ?? 4096;
            int heads = r.Int("num_attention_heads") ?? 32;
            int kvHeads = r.Int("num_key_value_heads") ?? heads;
            Positive(source, "hidden_size", hidden);
            Positive(source, "num_attention_heads", heads);
            Positive(source, "num_key_value_heads", kvHeads);
            if (heads % kvHeads != 0)
                throw new CheckpointException(source, $"{kvHeads} does not divide num_attention_heads ({heads})", field: "num_key_value_heads");
            int? headDimField = r.Int("head_dim");
            if (headDimField is null && hidden % heads != 0)
                throw new CheckpointException(source, $"hidden_size {hidden} is not a multiple of num_attention_heads {heads}, and no head_dim is given", field: "head_dim");
            int headDim = headDimField ?? hidden / heads;
            Positive(source, "head_dim", headDim);
            if (headDim % 2 != 0) throw new CheckpointException(source, $"is {headDim}; RoPE needs an even head dimension", field: "head_dim");
            // q_proj has num_attention_heads x head_dim rows, counted in int everywhere: a product that wraps would check weights against a wrong shape.
            if ((long)heads * headDim > int.MaxValue)
                throw new CheckpointException(source, $"is {headDim}; num_attention_heads ({heads}) x head_dim exceeds {int.MaxValue}", field: "head_dim");

            double theta = r.Double("rope_theta") ?? 10000.0;
            if (root.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object)
            {
                var rr = new JsonFieldReader(rp, source, "rope_parameters.");
                CheckRopeType(source, rr, "rope_parameters");
                theta = rr.Double("rope_theta") ?? theta;
            }
            if (root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object)
                CheckRopeType(source, new JsonFieldReader(rs, source, "rope_scaling."), "rope_scaling");
            if (!(theta > 0) || double.IsInfinity(theta)) throw new CheckpointException(source, $"is {theta}; it must be positive", field: "rope_theta");

            double eps = r.Double("rms_norm_eps") ?? 1e-6;
            if (!(eps > 0)) throw new CheckpointException(source, $"is {eps}; it must be positive", field: "rms_norm_eps");

            var cfg = new Qwen2Config
            {
                ModelType = modelType,
                // Qwen2's attention always has q/k/v biases (transformers ignores any attention_bias field there);
                // Qwen3's attention_bias gives q, k, v and o biases.
                AttentionBias = !qwen3 || (r.Bool("attention_bias") ?? false),
                OProjBias = qwen3 && (r.Bool("attention_bias") ?? false),
                QkNorm = qwen3,
                HiddenSize = hidden,
                IntermediateSize = r.Int("intermediate_size") ?? 22016,
                NumHiddenLayers = r.Int("num_hidden_layers") ?? 32,
                NumAttentionHeads = heads,
                NumKeyValueHeads = kvHeads,
                HeadDim = headDim,
                VocabSize = r.Int("vocab_size") ?? 151936,
                MaxPositionEmbeddings = r.Int("max_position_embeddings") ?? 32768,
                RopeTheta = theta,
                RmsNormEps = eps,
                TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
                UseSlidingWindow = r.Bool("use_sliding_window") ?? false,
                SlidingWindow = r.Int("sliding_window") ?? 4096,
                MaxWindowLayers = r.Int("max_window_layers") ?? 28,
                LayerTypes = r.StringList("layer_types"),
                BosTokenId = r.Int("bos_token_id"),
                EosTokenIds = r.IntOrIntList("eos_token_id"),
                TorchDtype = r.String("torch_dtype") ?? r.String("dtype"),
            };
            Positive(source, "intermediate_size", cfg.IntermediateSize);
            Positive(source, "num_hidden_layers", cfg.NumHiddenLayers);
            Positive(source, "vocab_size", cfg.VocabSize);
            Positive(source, "max_position_embeddings", cfg.MaxPositionEmbeddings);
            if (cfg.UseSlidingWindow) Positive(source, "sliding_window", cfg.SlidingWindow);
            if (cfg.LayerTypes is { } types)
            {
                if (types.Count != cfg.NumHiddenLayers)
                    throw new CheckpointException(source, $"lists {types.Count} layers, num_hidden_layers is {cfg.NumHiddenLayers}", field: "layer_types");
                foreach (var t in types)
                    if (t is not ("full_attention" or "sliding_attention"))
                        throw new CheckpointException(source, $"has \"{t}\"; expected \"full_attention\" or \"sliding_attention\"", field: "layer_types");
            }
            return cfg;
        }
    }

    private static void CheckRopeType(string source, JsonFieldReader r, string name)
    {
        string? type = r.String("rope_type") ?? r.String("type");
        if (type is not null and not "default")
            throw new CheckpointException(source, $"rope type \"{type}\" is not supported (only the default RoPE)", field: name);
    }

    private static void Positive(string source, string field, int value)
    {
        if (value <= 0) throw new CheckpointException(source, $"is {value}; it must be positive", field: field);
    }

    /// <summary>A one-line summary of the architecture.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{ModelType}: {NumHiddenLayers} layers, hidden {HiddenSize}, heads {NumAttentionHeads}/{NumKeyValueHeads} x {HeadDim}, intermediate {IntermediateSize}, vocab {VocabSize}, rope_theta {RopeTheta}, eps {RmsNormEps}, tied {TieWordEmbeddings}, sliding {(UseSlidingWindow ? SlidingWindow.ToString(CultureInfo.InvariantCulture) : "off")}");
}
