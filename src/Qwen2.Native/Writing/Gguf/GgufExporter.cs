using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Gguf;

/// <summary>
/// Writes any model the engine loads — a Hugging Face Qwen2 checkpoint directory (config.json, safetensors weights in
/// BF16, F16 or F32, tokenizer.json, optional tokenizer_config.json and generation_config.json) or a GGUF file — as a
/// GGUF v3 file that llama.cpp loads as architecture <c>qwen2</c>, with the metadata, vocabulary and tensor names
/// llama.cpp's own converter writes (a GGUF input's metadata is carried over key by key, <c>general.file_type</c> set
/// for the new mix).
/// </summary>
/// <remarks>
/// Both inputs are read through the loading layer's tensor sources under their own tensor names, so one path writes
/// every tensor. Tensor data is streamed one chunk at a time, so a multi-gigabyte export needs little memory. BF16
/// widens to float32 exactly; narrowing to float16 rounds to nearest even, overflowing to infinity and underflowing
/// through subnormals as numpy's <c>astype(float16)</c> does. A quantization mix (<see cref="GgufFileType.Q4_K_M"/> and
/// the others) gives each tensor the type llama.cpp's quantizer would (<see cref="GgufQuantization.TensorType"/>) and
/// quantizes it with llama.cpp's reference algorithms (<see cref="WeightQuantizer"/>), rows in parallel on every core.
/// A tensor already of its target type is copied as it is; one already quantized to another type is dequantized and
/// quantized again only when asked (llama.cpp's <c>--allow-requantize</c>), as that compounds both errors.
/// llama.cpp's qwen2 graph has no sliding-window attention, so a config with <c>use_sliding_window</c> exports the same
/// as one without (as llama.cpp's converter does).
/// </remarks>
public static class GgufExporter
{
    // Elements converted per chunk: 4 MiB of float32 scratch.
    private const int ChunkElements = 1 << 20;

    /// <summary>llama.cpp's token types.</summary>
    private const int Normal = 1, Unused = 5, Control = 3, UserDefined = 4;

    /// <summary>Writes <paramref name="outputPath"/> from <paramref name="model"/>, refusing to requantize.</summary>
    /// <inheritdoc cref="Export(string, string, GgufFileType, bool, IProgress{GgufExportProgress}?, CancellationToken)"/>
    public static GgufExportResult Export(string model, string outputPath, GgufFileType type,
        IProgress<GgufExportProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Export(model, outputPath, type, allowRequantize: false, progress, cancellationToken);

    /// <summary>Writes <paramref name="outputPath"/> from the model at <paramref name="model"/>.</summary>
    /// <param name="model">A Hugging Face Qwen2 checkpoint directory, a <c>.gguf</c> file (the first part of a split one), or a directory holding one.</param>
    /// <param name="outputPath">The GGUF file to write; replaced only once the new one is complete.</param>
    /// <param name="type">Element type of the matrices, or a quantization mix; norms and biases are always float32.</param>
    /// <param name="allowRequantize">Whether a tensor already quantized to another type than its target may be dequantized and quantized again.</param>
    /// <param name="progress">Told the bytes written after each chunk.</param>
    /// <param name="cancellationToken">Stops the export; the partial file is deleted.</param>
    /// <exception cref="CheckpointException">A file is missing or malformed, a tensor is missing or misshapen, or one would be requantized without <paramref name="allowRequantize"/>; the message names the file and tensor or field.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="type"/> is not a defined file type.</exception>
    public static unsafe GgufExportResult Export(string model, string outputPath, GgufFileType type, bool allowRequantize,
        IProgress<GgufExportProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (!Enum.IsDefined(type)) throw new ArgumentOutOfRangeException(nameof(type), type, "unknown GGUF file type");
        var clock = Stopwatch.StartNew();
        using var input = GgufExportInput.Open(model);
        var tensors = PlanTensors(input, type, allowRequantize);

        using var writer = new GgufWriter(outputPath);
        int tokenCount = input.WriteMetadata(writer, type);
        foreach (var t in tensors) writer.AddTensor(t.Name, t.Source.Shape, t.Target);
        writer.Begin();

        long total = tensors.Sum(t => WeightTypes.ByteCount(GgmlTypeLayout.ToWeightType(t.Target), Count(t))), written = 0;
        float[] wide = new float[ChunkElements];
        byte[] narrow = new byte[ChunkElements * sizeof(float)];
        foreach (var t in tensors)
        {
            var target = GgmlTypeLayout.ToWeightType(t.Target);
            if (WeightTypes.IsQuantized(target) && t.Source.Type != target)
            {
                written = WriteQuantized(writer, t, written, total, progress, cancellationToken);
                continue;
            }
            var source = t.Source.Type;
            long count = Count(t);
            for (long from = 0; from < count; from += ChunkElements)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = (int)Math.Min(ChunkElements, count - from);
                long sourceBytes = WeightTypes.ByteCount(source, n);
                var src = new ReadOnlySpan<byte>(t.Source.Data + WeightTypes.ByteCount(source, from), checked((int)sourceBytes));
                if (source == target)
                    writer.Write(src); // same encoding: the bytes as they are
                else
                {
                    var values = wide.AsSpan(0, n);
                    WeightTypes.ToSingle(source, src, values);
                    var dst = narrow.AsSpan(0, n * GgufWriter.ElementSize(t.Target));
                    if (t.Target == GgmlType.F32) MemoryMarshal.AsBytes(values).CopyTo(dst);
                    else TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(dst));
                    writer.Write(dst);
                }
                written += WeightTypes.ByteCount(target, n);
                progress?.Report(new GgufExportProgress(written, total, t.Name));
            }
        }
        writer.Complete();
        return new GgufExportResult(outputPath, type, tensors.Count, tokenCount, new FileInfo(outputPath).Length, clock.Elapsed);
    }

    private static long Count(PlannedTensor t) => t.Source.Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Quantizes a matrix a chunk of rows at a time, in parallel over the rows of each chunk.</summary>
    private static unsafe long WriteQuantized(GgufWriter writer, PlannedTensor t, long written, long total, IProgress<GgufExportProgress>? progress, CancellationToken cancellationToken)
    {
        var target = GgmlTypeLayout.ToWeightType(t.Target);
        int rows = checked((int)t.Source.Shape[0]), cols = checked((int)t.Source.Shape[1]);
        var source = new WeightMatrix(t.Source.Data, rows, cols, t.Source.Type);
        long rowBytes = WeightTypes.ByteCount(target, cols);
        int chunkRows = Math.Clamp(ChunkElements / cols, 1, rows);
        byte[] buffer = new byte[chunkRows * rowBytes];
        fixed (byte* b = buffer)
        {
            for (int first = 0; first < rows; first += chunkRows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = Math.Min(chunkRows, rows - first);
                MatrixQuantizer.QuantizeRows(source, first, n, target, b, Environment.ProcessorCount, t.Source.File, t.SourceName, cancellationToken);
                writer.Write(buffer.AsSpan(0, checked((int)(n * rowBytes))));
                written += n * rowBytes;
                progress?.Report(new GgufExportProgress(written, total, t.Name));
            }
        }
        return written;
    }

    private sealed record PlannedTensor(string Name, SourceTensor Source, string SourceName, GgmlType Target);

    /// <summary>Every tensor llama.cpp's qwen2 loader expects, under its GGUF name, found under the input's names and checked against its config.</summary>
    private static List<PlannedTensor> PlanTensors(GgufExportInput input, GgufFileType type, bool allowRequantize)
    {
        var c = input.Config;
        long h = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, inter = c.IntermediateSize;
        var list = new List<PlannedTensor>();
        void Add(string gguf, string name, params long[] shape)
        {
            var t = WeightLoader.Find(input.Source, name, shape); // refuses types the engine does not compute with, naming the tensor
            // llama.cpp's converter keeps 1-D tensors (norms, biases) in float32 whatever the file type.
            var target = GgufQuantization.IsQuantized(type)
                ? GgufQuantization.TensorType(type, gguf, shape, c.NumHiddenLayers, c.TieWordEmbeddings || c.LastTokenPooling)
                : shape.Length >= 2 && type == GgufFileType.F16 ? WeightType.F16 : WeightType.F32;
            if (WeightTypes.IsQuantized(t.Type) && WeightTypes.IsQuantized(target) && t.Type != target && !allowRequantize)
                throw new CheckpointException(t.File,
                    $"is already {t.Type}; quantizing it again to {target} adds a second rounding error, so it is refused unless requantizing is allowed (qwen2 quantize --allow-requantize, as llama.cpp's quantize)",
                    name, "type");
            list.Add(new PlannedTensor(gguf, t, name, GgmlTypeLayout.FromWeightType(target)));
        }
        var n = input.Names;
        var g = TensorNames.Gguf;
        Add(g.Embed, n.Embed, c.VocabSize, h);
        (LayerTensor Tensor, long[] Shape)[] layer =
        [
            (LayerTensor.AttentionNorm, [h]), (LayerTensor.Q, [q, h]), (LayerTensor.QBias, [q]), (LayerTensor.K, [kv, h]), (LayerTensor.KBias, [kv]),
            (LayerTensor.V, [kv, h]), (LayerTensor.VBias, [kv]), (LayerTensor.O, [h, q]), (LayerTensor.FfnNorm, [h]),
            (LayerTensor.Gate, [inter, h]), (LayerTensor.Up, [inter, h]), (LayerTensor.Down, [h, inter]),
        ];
        // Qwen3 (llama.cpp's LLM_ARCH_QWEN3): no biases, and attn_q_norm / attn_k_norm of head_dim after attn_k.
        var present = layer.Where(t => c.AttentionBias || t.Tensor is not (LayerTensor.QBias or LayerTensor.KBias or LayerTensor.VBias)).ToList();
        if (c.QkNorm)
            present.InsertRange(present.FindIndex(t => t.Tensor == LayerTensor.V), [(LayerTensor.QNorm, [c.HeadDim]), (LayerTensor.KNorm, [c.HeadDim])]);
        if (c.OProjBias) present.Insert(present.FindIndex(t => t.Tensor == LayerTensor.O) + 1, (LayerTensor.OBias, [h]));
        for (int i = 0; i < c.NumHiddenLayers; i++)
            foreach (var (tensor, shape) in present) Add(g.Of(i, tensor), n.Of(i, tensor), shape);
        Add(g.Norm, n.Norm, h);
        // Tied: no output.weight, and llama.cpp reuses token_embd. The config decides, as in the engine. An embedding
        // model has no head to write (llama.cpp's converter writes none for Qwen3-Embedding either).
        if (!c.TieWordEmbeddings && !c.LastTokenPooling) Add(g.LmHead, n.LmHead, c.VocabSize, h);
        return list;
    }

    /// <summary>The general keys every export starts with.</summary>
    internal static void WriteGeneral(GgufWriter w, string architecture, string name, GgufFileType type)
    {
        w.AddString("general.architecture", architecture);
        w.AddString("general.name", name.Length > 0 ? name : architecture);
        w.AddUInt32("general.file_type", (uint)type);
        if (GgufQuantization.IsQuantized(type)) w.AddUInt32("general.quantization_version", 2); // GGML_QNT_VERSION
        w.AddUInt32("general.alignment", (uint)w.Alignment);
    }

    /// <summary>Reads a checkpoint's generation config and tokenizer now (so errors come before any writing) and returns what writes them as metadata.</summary>
    internal static Func<GgufWriter, GgufFileType, int> CheckpointMetadata(string directory, Qwen2Config config)
    {
        var generation = GenerationConfig.Load(directory);
        var tokenizer = ReadTokenizer(directory);
        return (w, type) => WriteMetadata(w, directory, config, generation, tokenizer, type);
    }

    private static TokenizerFiles ReadTokenizer(string directory)
    {
        string json = Path.Combine(directory, Qwen2Tokenizer.TokenizerJsonFile);
        if (!File.Exists(json) && File.Exists(json + ".gz")) json += ".gz";
        if (!File.Exists(json))
            throw new CheckpointException(json, $"file not found (nor {Qwen2Tokenizer.TokenizerJsonFile}.gz); a GGUF file carries the vocabulary, so the checkpoint needs its tokenizer");
        string configPath = Path.Combine(directory, Qwen2Tokenizer.TokenizerConfigFile);
        using var jsonStream = File.OpenRead(json);
        using var configStream = File.Exists(configPath) ? File.OpenRead(configPath) : null;
        return TokenizerFiles.Read(jsonStream, configStream, json, configPath);
    }

    /// <summary>Adds the general, architecture (qwen2 or qwen3) and tokenizer keys; returns the number of tokens listed.</summary>
    private static int WriteMetadata(GgufWriter w, string directory, Qwen2Config c, GenerationConfig generation, TokenizerFiles tok, GgufFileType type)
    {
        string a = c.ModelType; // the GGUF architecture has the model_type's name, and prefixes its keys
        WriteGeneral(w, a, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))), type);

        w.AddUInt32($"{a}.context_length", (uint)c.MaxPositionEmbeddings);
        w.AddUInt32($"{a}.embedding_length", (uint)c.HiddenSize);
        w.AddUInt32($"{a}.block_count", (uint)c.NumHiddenLayers);
        w.AddUInt32($"{a}.feed_forward_length", (uint)c.IntermediateSize);
        w.AddUInt32($"{a}.attention.head_count", (uint)c.NumAttentionHeads);
        w.AddUInt32($"{a}.attention.head_count_kv", (uint)c.NumKeyValueHeads);
        w.AddFloat32($"{a}.rope.freq_base", (float)c.RopeTheta);
        w.AddFloat32($"{a}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        if (c.LastTokenPooling) w.AddUInt32($"{a}.pooling_type", 3); // LLAMA_POOLING_TYPE_LAST, as llama.cpp's converter writes for Qwen3-Embedding
        if (c.QkNorm || c.HeadDim * c.NumAttentionHeads != c.HiddenSize)
        {
            // llama.cpp derives the head size from embedding_length / head_count unless told otherwise; its Qwen3
            // converter always writes it (head_dim is its own field there).
            w.AddUInt32($"{a}.attention.key_length", (uint)c.HeadDim);
            w.AddUInt32($"{a}.attention.value_length", (uint)c.HeadDim);
        }

        // The token list has exactly vocab_size entries, the rows of the embedding: ids the tokenizer does not use
        // become "[PAD{id}]" (UNUSED), as llama.cpp's converter pads Qwen's 151665-token vocabulary to 151936.
        var tokens = new string?[c.VocabSize];
        var types = new int[c.VocabSize];
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        string jsonName = Path.Combine(directory, Qwen2Tokenizer.TokenizerJsonFile);
        foreach (var (token, id) in tok.Vocab)
        {
            if (id >= c.VocabSize)
                throw new CheckpointException(jsonName, $"token '{token}' has id {id}, beyond config.json's vocab_size {c.VocabSize}", field: "model.vocab");
            tokens[id] = token;
            types[id] = Normal;
            ids[token] = id;
        }
        foreach (var t in tok.AddedTokens)
        {
            if (t.Id >= c.VocabSize)
                throw new CheckpointException(jsonName, $"added token '{t.Content}' has id {t.Id}, beyond config.json's vocab_size {c.VocabSize}", field: "added_tokens");
            tokens[t.Id] = t.Content;
            // Special tokens, and added tokens that look like "<|...|>", are control tokens; the rest user-defined.
            types[t.Id] = t.Special || (t.Content.StartsWith("<|", StringComparison.Ordinal) && t.Content.EndsWith("|>", StringComparison.Ordinal)) ? Control : UserDefined;
            ids[t.Content] = t.Id;
        }
        var list = new string[c.VocabSize];
        for (int i = 0; i < list.Length; i++)
        {
            if (tokens[i] is { } s) list[i] = s;
            else { list[i] = $"[PAD{i}]"; types[i] = Unused; }
        }
        w.AddString("tokenizer.ggml.model", "gpt2");
        w.AddString("tokenizer.ggml.pre", "qwen2");
        w.AddStringArray("tokenizer.ggml.tokens", list);
        w.AddInt32Array("tokenizer.ggml.token_type", types);
        w.AddStringArray("tokenizer.ggml.merges", tok.Merges);

        // tokenizer_config.json's token texts first, then the ids config.json and generation_config.json give.
        int? Lookup(string? text) => text is not null && ids.TryGetValue(text, out int id) ? id : null;
        // A TemplateProcessing post-processor's tokens become BOS/EOS with add_bos/add_eos, the only way llama.cpp adds
        // tokens around a text; its converter does the same for Qwen3-Embedding, whose appended <|endoftext|> is not
        // tokenizer_config.json's eos_token.
        if (tok.TemplatePrefix.Length > 1 || tok.TemplateSuffix.Length > 1)
            throw new CheckpointException(jsonName, $"adds {tok.TemplatePrefix.Length} tokens before and {tok.TemplateSuffix.Length} after the text; GGUF holds one BOS and one EOS", field: "post_processor");
        int? bos = tok.TemplatePrefix.Length == 1 ? tok.TemplatePrefix[0] : Lookup(tok.Settings.BosToken) ?? c.BosTokenId ?? generation.BosTokenId;
        int? eos = tok.TemplateSuffix.Length == 1 ? tok.TemplateSuffix[0]
            : Lookup(tok.Settings.EosToken) ?? c.EosTokenIds.Cast<int?>().FirstOrDefault() ?? generation.EosTokenIds.Cast<int?>().FirstOrDefault();
        int? pad = Lookup(tok.Settings.PadToken) ?? generation.PadTokenId;
        if (bos is { } b && b >= 0 && b < c.VocabSize) w.AddUInt32("tokenizer.ggml.bos_token_id", (uint)b);
        if (eos is { } e && e >= 0 && e < c.VocabSize) w.AddUInt32("tokenizer.ggml.eos_token_id", (uint)e);
        if (pad is { } p && p >= 0 && p < c.VocabSize) w.AddUInt32("tokenizer.ggml.padding_token_id", (uint)p);
        w.AddBool("tokenizer.ggml.add_bos_token", tok.Settings.AddBosToken || tok.TemplatePrefix.Length == 1);
        if (tok.TemplateSuffix.Length == 1) w.AddBool("tokenizer.ggml.add_eos_token", true);
        if (tok.Settings.ChatTemplate is { } template) w.AddString("tokenizer.chat_template", template);
        return list.Length;
    }
}
