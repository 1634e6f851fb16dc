namespace Qwen2.Native;

/// <summary>
/// Builds a <see cref="Qwen2Config"/> from a GGUF file's metadata, with the checks <see cref="Qwen2Config.Parse"/> makes
/// on config.json; errors name the GGUF key.
/// </summary>
internal static class GgufConfigReader
{
    /// <summary>Opens the GGUF model at <paramref name="path"/> (every part), its architecture and its config; nothing stays open on failure.</summary>
    public static (GgufModelFiles Files, GgufArchitecture Arch, Qwen2Config Config) Open(string path)
    {
        if (!GgufFile.HasMagic(path))
            throw new CheckpointException(path, "is a file but not a GGUF file; pass a checkpoint directory (config.json and safetensors) or a .gguf file", field: "magic");
        var files = new GgufModelFiles(path);
        try
        {
            string archName = files.First.MetadataReader.String("general.architecture")
                ?? throw new CheckpointException(path, "is missing", field: "general.architecture");
            var arch = GgufArchitectures.Get(archName, path);
            return (files, arch, Read(files, arch));
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    public static Qwen2Config Read(GgufModelFiles files, GgufArchitecture arch)
    {
        var file = files.First;
        var m = file.MetadataReader;
        string path = file.Path, p = arch.Name + ".";
        int Required(string key) => m.PositiveInt(p + key) ?? throw new CheckpointException(path, "is missing", field: p + key);

        int hidden = Required("embedding_length");
        int heads = Required("attention.head_count");
        int kvHeads = m.PositiveInt(p + "attention.head_count_kv") ?? heads;
        if (heads % kvHeads != 0)
            throw new CheckpointException(path, $"{kvHeads} does not divide {p}attention.head_count ({heads})", field: p + "attention.head_count_kv");
        int? keyLength = m.PositiveInt(p + "attention.key_length");
        if (keyLength is null && hidden % heads != 0)
            throw new CheckpointException(path, $"{p}embedding_length {hidden} is not a multiple of {p}attention.head_count {heads}, and no key_length is given", field: p + "attention.key_length");
        int headDim = keyLength ?? hidden / heads;
        if (headDim % 2 != 0) throw new CheckpointException(path, $"is {headDim}; RoPE needs an even head dimension", field: p + "attention.key_length");
        if (m.PositiveInt(p + "attention.value_length") is { } valueLength && valueLength != headDim)
            throw new CheckpointException(path, $"is {valueLength}, but key_length is {headDim}; the engine needs equal key and value heads", field: p + "attention.value_length");
        if ((long)heads * headDim > int.MaxValue)
            throw new CheckpointException(path, $"head_count ({heads}) x head dimension ({headDim}) exceeds {int.MaxValue}", field: p + "attention.key_length");
        if (m.String(p + "rope.scaling.type") is { } scaling && scaling != "none")
            throw new CheckpointException(path, $"rope scaling \"{scaling}\" is not supported (only the default RoPE)", field: p + "rope.scaling.type");

        double theta = m.Float(p + "rope.freq_base") ?? 10000.0;
        if (!(theta > 0) || double.IsInfinity(theta)) throw new CheckpointException(path, $"is {theta}; it must be positive", field: p + "rope.freq_base");
        double eps = m.Float(p + "attention.layer_norm_rms_epsilon") ?? throw new CheckpointException(path, "is missing", field: p + "attention.layer_norm_rms_epsilon");
        if (!(eps > 0)) throw new CheckpointException(path, $"is {eps}; it must be positive", field: p + "attention.layer_norm_rms_epsilon");

        int vocab = m.StringArray("tokenizer.ggml.tokens")?.Length
            ?? throw new CheckpointException(path, "is missing; the vocabulary size is the length of the token list", field: "tokenizer.ggml.tokens");
        if (vocab == 0) throw new CheckpointException(path, "is empty", field: "tokenizer.ggml.tokens");
        int? Token(string key) => (int?)m.Integer(key, 0, vocab - 1);
        int? eos = Token("tokenizer.ggml.eos_token_id");
        // llama.cpp's enum llama_pooling_type: 0 none (a language model), 1 mean, 2 cls, 3 last (Qwen3-Embedding), 4 rank.
        long pooling = m.Integer(p + "pooling_type") ?? 0;
        if (pooling is not (0 or 3))
            throw new CheckpointException(path, $"is {pooling}; only 0 (none: a language model) and 3 (last token: Qwen3-Embedding) are supported", field: p + "pooling_type");
        return new Qwen2Config
        {
            ModelType = arch.Name,
            // qwen3 has biases only when its checkpoint had attention_bias (q, k, v and o alike).
            AttentionBias = arch.Name == "qwen2" || files.TryGet(arch.Names.Of(0, LayerTensor.QBias), out _, out _),
            OProjBias = arch.Name == "qwen3" && files.TryGet(arch.Names.Of(0, LayerTensor.OBias), out _, out _),
            QkNorm = arch.Name == "qwen3",
            HiddenSize = hidden,
            IntermediateSize = Required("feed_forward_length"),
            NumHiddenLayers = Required("block_count"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = vocab,
            MaxPositionEmbeddings = Required("context_length"),
            RopeTheta = theta,
            RmsNormEps = eps,
            // GGUF has no tie flag: llama.cpp reuses token_embd when output.weight is absent, and so does the engine.
            TieWordEmbeddings = !files.TryGet(arch.Names.LmHead, out _, out _), // in any part of a split model
            BosTokenId = Token("tokenizer.ggml.bos_token_id"),
            EosTokenIds = eos is { } e ? [e] : [],
            TorchDtype = GgufFileTypes.Describe(m),
            LastTokenPooling = pooling == 3,
        };
    }
}
