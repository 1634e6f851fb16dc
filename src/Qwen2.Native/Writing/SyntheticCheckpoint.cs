using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// Writes random-weight Qwen2 checkpoints with real shapes and Hugging Face file layout (<c>config.json</c>,
/// <c>generation_config.json</c>, <c>model.safetensors</c>), for load, memory and speed measurements where the
/// real weights are not at hand. Their outputs mean nothing. Values: matrices uniform with standard deviation 0.02
/// (Qwen2's initializer_range), biases uniform with standard deviation 0.01, norm weights 1 plus uniform noise of
/// standard deviation 0.02. The values come from a counter-based generator keyed by (seed, tensor, chunk), so
/// chunks are filled in parallel yet the same seed gives byte-identical files, and every dtype rounds the same floats.
/// </summary>
public static class SyntheticCheckpoint
{
    /// <summary>Standard deviation of the weight matrices (Qwen2's <c>initializer_range</c>).</summary>
    public const double WeightStd = 0.02;

    // Elements per independently seeded chunk: the unit of parallel work. Changing it changes the files.
    private const int ChunkElements = 1 << 16;
    // Chunks filled per block; one block is written while the next is filled (16 MiB blocks for F32).
    private const int BlockChunks = 64;
    // Free space kept beyond the file itself, so a nearly full disk is refused rather than filled to the last byte.
    private const long SpaceMargin = 64L << 20;

    /// <summary>Writes a random-weight checkpoint of <paramref name="shape"/> into <paramref name="directory"/> (created if needed).</summary>
    /// <param name="directory">Target directory; it must be missing or empty unless <paramref name="overwrite"/>.</param>
    /// <param name="shape">The architecture, e.g. <see cref="SyntheticShape.Qwen2_0_5B"/>.</param>
    /// <param name="dtype">Element type of every tensor.</param>
    /// <param name="seed">Seed of the values: the same seed, shape and dtype give byte-identical files.</param>
    /// <param name="progress">Told the bytes written after each block of data.</param>
    /// <param name="overwrite">Write into a non-empty directory, replacing the files named above (others are left alone).</param>
    /// <param name="cancellationToken">Stops the write; the partial weight file is deleted.</param>
    /// <exception cref="ArgumentException">The shape is invalid or <paramref name="directory"/> is empty.</exception>
    /// <exception cref="IOException">The directory is a file, is not empty (without <paramref name="overwrite"/>), or its disk lacks the space; the message names the directory.</exception>
    public static SyntheticCheckpointResult Write(string directory, SyntheticShape shape, WeightType dtype, ulong seed = 0,
        IProgress<SyntheticProgress>? progress = null, bool overwrite = false, CancellationToken cancellationToken = default) =>
        WriteWith(AvailableBytes, directory, shape, dtype, seed, progress, overwrite, cancellationToken);

    /// <summary>As the public overload, with the free-space probe replaceable (tests fake a full disk).</summary>
    internal static SyntheticCheckpointResult WriteWith(Func<string, long> availableBytes, string directory, SyntheticShape shape, WeightType dtype,
        ulong seed = 0, IProgress<SyntheticProgress>? progress = null, bool overwrite = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        int elementSize = WeightTypes.SizeOf(dtype); // also rejects an undefined dtype
        var clock = Stopwatch.StartNew();

        if (File.Exists(directory)) throw new IOException($"'{directory}' is a file; the checkpoint needs a directory");
        if (Directory.Exists(directory) && !overwrite && Directory.EnumerateFileSystemEntries(directory).Any())
            throw new IOException($"'{directory}' is not empty; refusing to overwrite it (choose an empty or new directory, or allow overwriting)");
        var specs = shape.TensorShapes().Select(t => new TensorSpec(t.Name, dtype, t.Shape)).ToArray();
        long fileBytes = SafeTensorsWriter.FileSize(specs), needed = fileBytes + SpaceMargin;
        // Probed before anything is created, on the nearest directory that exists (the target may not yet).
        long free = availableBytes(ExistingAncestor(Path.GetFullPath(directory)));
        if (free < needed)
            throw new IOException(string.Create(CultureInfo.InvariantCulture,
                $"'{directory}' has {free:N0} bytes free; the {shape.Name} {TensorSpec.HeaderName(dtype)} checkpoint needs {needed:N0} ({fileBytes:N0} for model.safetensors plus a {SpaceMargin >> 20} MiB margin)"));
        Directory.CreateDirectory(directory);

        string modelPath = Path.Combine(directory, CheckpointFiles.SingleFile);
        using (var writer = new SafeTensorsWriter(modelPath, specs))
        {
            WriteData(writer, specs, elementSize, seed, progress, cancellationToken);
            writer.Complete();
        }
        File.WriteAllBytes(Path.Combine(directory, "config.json"), ConfigJson(shape, dtype));
        File.WriteAllBytes(Path.Combine(directory, "generation_config.json"), GenerationConfigJson(shape));
        if (shape.Embedding) WriteSentenceTransformersFiles(directory, shape);
        return new SyntheticCheckpointResult(directory, shape, dtype, shape.ParameterCount, new FileInfo(modelPath).Length, clock.Elapsed);
    }

    /// <summary>The query instruction Qwen3-Embedding's config_sentence_transformers.json names "query".</summary>
    public const string QueryPrompt = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:";

    /// <summary>sentence-transformers' files as Qwen3-Embedding ships them: Transformer, lasttoken Pooling, Normalize; the query and document prompts.</summary>
    private static void WriteSentenceTransformersFiles(string directory, SyntheticShape shape)
    {
        File.WriteAllText(Path.Combine(directory, "modules.json"), """
            [
              {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            ]

            """);
        Directory.CreateDirectory(Path.Combine(directory, "1_Pooling"));
        File.WriteAllText(Path.Combine(directory, "1_Pooling", "config.json"), string.Create(CultureInfo.InvariantCulture, $$"""
            {
              "word_embedding_dimension": {{shape.HiddenSize}},
              "pooling_mode_cls_token": false,
              "pooling_mode_mean_tokens": false,
              "pooling_mode_max_tokens": false,
              "pooling_mode_mean_sqrt_len_tokens": false,
              "pooling_mode_weightedmean_tokens": false,
              "pooling_mode_lasttoken": true,
              "include_prompt": true
            }

            """));
        Directory.CreateDirectory(Path.Combine(directory, "2_Normalize"));
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartObject("prompts");
            w.WriteString("query", QueryPrompt);
            w.WriteString("document", "");
            w.WriteEndObject();
            w.WriteNull("default_prompt_name");
            w.WriteString("similarity_fn_name", "cosine");
            w.WriteEndObject();
        }
        File.WriteAllBytes(Path.Combine(directory, "config_sentence_transformers.json"), buffer.ToArray());
    }

    /// <summary>
    /// Gives a Qwen tokenizer.json Qwen3-Embedding's post-processor: a TemplateProcessing step that appends
    /// <c>&lt;|endoftext|&gt;</c> (id 151643) to every text, so the last token an embedding pools is that one.
    /// </summary>
    /// <param name="tokenizerJsonPath">A plain (not gzipped) tokenizer.json, rewritten in place.</param>
    public static void AddEmbeddingTemplate(string tokenizerJsonPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllBytes(tokenizerJsonPath))!.AsObject();
        static System.Text.Json.Nodes.JsonNode Piece(string kind, string id) =>
            new System.Text.Json.Nodes.JsonObject { [kind] = new System.Text.Json.Nodes.JsonObject { ["id"] = id, ["type_id"] = 0 } };
        root["post_processor"] = new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "TemplateProcessing",
            ["single"] = new System.Text.Json.Nodes.JsonArray(Piece("Sequence", "A"), Piece("SpecialToken", "<|endoftext|>")),
            ["pair"] = new System.Text.Json.Nodes.JsonArray(Piece("Sequence", "A"), Piece("Sequence", "B"), Piece("SpecialToken", "<|endoftext|>")),
            ["special_tokens"] = new System.Text.Json.Nodes.JsonObject
            {
                ["<|endoftext|>"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["id"] = "<|endoftext|>", ["ids"] = new System.Text.Json.Nodes.JsonArray(151643), ["tokens"] = new System.Text.Json.Nodes.JsonArray("<|endoftext|>"),
                },
            },
        };
        using var file = File.Create(tokenizerJsonPath);
        using var w = new Utf8JsonWriter(file);
        root.WriteTo(w);
    }

    private static string ExistingAncestor(string fullPath)
    {
        var dir = new DirectoryInfo(fullPath);
        while (!dir.Exists && dir.Parent is not null) dir = dir.Parent;
        return dir.FullName;
    }

    private static long AvailableBytes(string fullPath) =>
        new DriveInfo(OperatingSystem.IsWindows() ? Path.GetPathRoot(fullPath)! : fullPath).AvailableFreeSpace;

    private static void WriteData(SafeTensorsWriter writer, TensorSpec[] specs, int elementSize, ulong seed,
        IProgress<SyntheticProgress>? progress, CancellationToken cancellationToken)
    {
        int blockElements = BlockChunks * ChunkElements;
        byte[][] buffers = [new byte[blockElements * elementSize], new byte[blockElements * elementSize]];
        int next = 0;
        // One block goes to disk while the next is filled; only one write is ever pending, and it uses the other buffer.
        Task pending = Task.CompletedTask;
        var options = new ParallelOptions { CancellationToken = cancellationToken };
        try
        {
            for (int ti = 0; ti < specs.Length; ti++)
            {
                var spec = specs[ti];
                var (offset, scale) = Distribution(spec.Name);
                long elements = spec.ElementCount;
                for (long start = 0; start < elements; start += blockElements)
                {
                    int n = (int)Math.Min(blockElements, elements - start);
                    byte[] buffer = buffers[next];
                    next ^= 1;
                    long firstChunk = start / ChunkElements;
                    int chunks = (n + ChunkElements - 1) / ChunkElements;
                    int tensorIndex = ti;
                    Parallel.For(0, chunks, options, c =>
                    {
                        int from = c * ChunkElements, count = Math.Min(ChunkElements, n - from);
                        FillChunk(buffer.AsSpan(from * elementSize, count * elementSize), spec.DType,
                            ChunkSeed(seed, tensorIndex, firstChunk + c), offset, scale);
                    });
                    pending.GetAwaiter().GetResult();
                    progress?.Report(new SyntheticProgress(writer.BytesWritten, writer.DataBytes, spec.Name));
                    int bytes = n * elementSize;
                    pending = Task.Run(() => writer.Write(buffer.AsSpan(0, bytes)), cancellationToken);
                }
            }
            pending.GetAwaiter().GetResult();
            progress?.Report(new SyntheticProgress(writer.BytesWritten, writer.DataBytes, specs.Length > 0 ? specs[^1].Name : ""));
        }
        finally
        {
            // On failure the caller disposes the writer, which deletes the file: the pending write must finish first.
            // Its own exception, if any, is secondary to the one already propagating.
            if (!pending.IsCompleted) ((IAsyncResult)pending).AsyncWaitHandle.WaitOne();
        }
    }

    private static (float Offset, float Scale) Distribution(string name)
    {
        // Uniform on (-a, a) has standard deviation a / sqrt(3).
        static float Bound(double std) => (float)(std * Math.Sqrt(3));
        if (name.EndsWith("layernorm.weight", StringComparison.Ordinal) || name.EndsWith("_norm.weight", StringComparison.Ordinal)
            || name is "model.norm.weight" or "norm.weight") return (1f, Bound(WeightStd));
        if (name.EndsWith(".bias", StringComparison.Ordinal)) return (0f, Bound(WeightStd / 2));
        return (0f, Bound(WeightStd));
    }

    /// <summary>A chunk's starting state: SplitMix64-mixed (seed, tensor, chunk), so chunks are independent and reproducible.</summary>
    private static ulong ChunkSeed(ulong seed, int tensor, long chunk) =>
        Mix(Mix(seed ^ 0x51_7c_c1_b7_27_22_0a_95UL) ^ ((ulong)(uint)tensor << 40) ^ (ulong)chunk);

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="destination"/> with offset + scale * u, u uniform on (-1, 1), two values per SplitMix64 step.</summary>
    private static void FillChunk(Span<byte> destination, WeightType dtype, ulong state, float offset, float scale)
    {
        // 24 random bits map to (k + 0.5) * 2^-23 - 1: symmetric, never exactly +-1.
        float step = scale * (1f / (1 << 23)), bias = offset - scale + scale * (0.5f / (1 << 23));
        switch (dtype)
        {
            case WeightType.F32:
            {
                var d = MemoryMarshal.Cast<byte, float>(destination);
                for (int i = 0; i < d.Length; i += 2)
                {
                    ulong r = Next(ref state);
                    d[i] = bias + step * (uint)(r >> 40);
                    if (i + 1 < d.Length) d[i + 1] = bias + step * ((uint)r >> 8);
                }
                break;
            }
            case WeightType.BF16:
            {
                var d = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < d.Length; i += 2)
                {
                    ulong r = Next(ref state);
                    d[i] = SafeTensorsWriter.ToBFloat16(bias + step * (uint)(r >> 40));
                    if (i + 1 < d.Length) d[i + 1] = SafeTensorsWriter.ToBFloat16(bias + step * ((uint)r >> 8));
                }
                break;
            }
            case WeightType.F16:
            {
                var d = MemoryMarshal.Cast<byte, Half>(destination);
                for (int i = 0; i < d.Length; i += 2)
                {
                    ulong r = Next(ref state);
                    d[i] = (Half)(bias + step * (uint)(r >> 40));
                    if (i + 1 < d.Length) d[i + 1] = (Half)(bias + step * ((uint)r >> 8));
                }
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown weight type");
        }
    }

    private static ulong Next(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    private static string TorchDtype(WeightType dtype) => dtype switch
    {
        WeightType.F32 => "float32",
        WeightType.BF16 => "bfloat16",
        WeightType.F16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown weight type"),
    };

    /// <summary>A Hugging Face Qwen2 <c>config.json</c>, keys sorted as transformers writes them.</summary>
    internal static byte[] ConfigJson(SyntheticShape s, WeightType dtype)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue(s.IsQwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM");
            w.WriteEndArray();
            w.WritePropertyName("attention_dropout");
            w.WriteRawValue("0.0"); // transformers writes floats with a decimal point; Utf8JsonWriter would write 0
            if (s.IsQwen3) w.WriteBoolean("attention_bias", s.AttentionBias);
            w.WriteNumber("bos_token_id", 151643);
            w.WriteNumber("eos_token_id", 151645);
            if (s.ExplicitHeadDim > 0) w.WriteNumber("head_dim", s.ExplicitHeadDim);
            w.WriteString("hidden_act", "silu");
            w.WriteNumber("hidden_size", s.HiddenSize);
            w.WriteNumber("initializer_range", WeightStd);
            w.WriteNumber("intermediate_size", s.IntermediateSize);
            w.WriteNumber("max_position_embeddings", s.MaxPositionEmbeddings);
            // Every layer uses full attention (use_sliding_window is false), so max_window_layers covers them all.
            w.WriteNumber("max_window_layers", s.NumHiddenLayers);
            w.WriteString("model_type", s.ModelType);
            w.WriteNumber("num_attention_heads", s.NumAttentionHeads);
            w.WriteNumber("num_hidden_layers", s.NumHiddenLayers);
            w.WriteNumber("num_key_value_heads", s.NumKeyValueHeads);
            w.WritePropertyName("rms_norm_eps");
            w.WriteRawValue("1e-06");
            w.WriteNull("rope_scaling");
            w.WritePropertyName("rope_theta");
            w.WriteRawValue("1000000.0");
            w.WriteNumber("sliding_window", s.MaxPositionEmbeddings);
            w.WriteBoolean("tie_word_embeddings", s.TieWordEmbeddings);
            w.WriteString("torch_dtype", TorchDtype(dtype));
            w.WriteBoolean("use_cache", true);
            w.WriteBoolean("use_sliding_window", false);
            w.WriteNumber("vocab_size", s.VocabSize);
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>
    /// The sampling defaults Qwen2.5-Instruct ships in <c>generation_config.json</c>, or for a Qwen3 shape Qwen3's
    /// (temperature 0.6, top-p 0.95, top-k 20, its thinking-mode defaults, and no repetition penalty).
    /// </summary>
    internal static byte[] GenerationConfigJson(SyntheticShape shape)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("bos_token_id", 151643);
            w.WriteBoolean("do_sample", true);
            w.WriteStartArray("eos_token_id");
            w.WriteNumberValue(151645);
            w.WriteNumberValue(151643);
            w.WriteEndArray();
            w.WriteNumber("pad_token_id", 151643);
            if (!shape.IsQwen3) w.WriteNumber("repetition_penalty", 1.05);
            w.WriteNumber("temperature", shape.IsQwen3 ? 0.6 : 0.7);
            w.WriteNumber("top_k", 20);
            w.WriteNumber("top_p", shape.IsQwen3 ? 0.95 : 0.8);
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
