using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;
using static Qwen2.Native.Tests.CheckpointEdits;

namespace Qwen2.Native.Tests;

/// <summary>
/// Unusable checkpoints: each test copies a valid fixture into a temporary directory, breaks one thing, and checks
/// that loading fails with a <see cref="CheckpointException"/> naming the file and the tensor or field at fault. Most
/// of them are rows of <see cref="LoadingErrorCatalogue"/>; the tests below it check more, or something else.
/// </summary>
public sealed class LoadingErrorTests
{
    private const string Single = CheckpointFiles.SingleFile;

    public static TheoryData<string, int> Catalogue()
    {
        var data = new TheoryData<string, int>();
        foreach (var (test, row) in LoadingErrorCatalogue.Keys) data.Add(test, row);
        return data;
    }

    [Theory]
    [MemberData(nameof(Catalogue))]
    public void BrokenCheckpoint_ErrorNamesTheFault(string test, int row)
    {
        var c = LoadingErrorCatalogue.Get(test, row);
        using var dir = c.Fixture is null ? Fixtures.TempDir() : CopyModel(c.Fixture);
        var expected = c.Break(dir);

        var e = expected.OpenFile is { } file
            ? Assert.Throws<CheckpointException>(() => SafeTensorsFile.Open(file).Dispose())
            : LoadFails(expected.Directory ?? dir.Path);

        AssertError(e, expected.File, expected.Tensor, expected.Field, expected.Words);
        if (expected.Inner is { } inner) Assert.IsAssignableFrom(inner, e.InnerException);
    }

    // ---------------------------------------------------------------- loads that succeed

    [Fact]
    public void TensorForgottenByIndex_IsStillFoundInItsShard()
    {
        using var dir = CopyModel("sharded-bf16");
        EditIndex(dir, map => map.Remove("model.layers.1.mlp.up_proj.weight"));

        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
        Assert.Contains(model.Tensors, t => t.Tensor.Name == "model.layers.1.mlp.up_proj.weight");
    }

    [Fact]
    public void UnsupportedDtype_InATensorTheModelDoesNotUse_IsIgnored()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st.Tensors.Add(new StTensor("model.rotary_emb.position_ids", "I64", "[4]", new byte[32]));
        st.Write(dir.File(Single));

        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
        Assert.Contains(model.Tensors, t => t.Tensor.Name == "model.rotary_emb.position_ids" && t.Tensor.DType == "I64");
    }

    [Fact]
    public void MetadataIsNotATensor()
    {
        // __metadata__ (a map of strings) is not a tensor; the valid rest loads.
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st.Metadata = "{\"format\": \"pt\", \"note\": \"not a tensor\"}";
        st.Write(dir.File(Single));

        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
        Assert.DoesNotContain(model.Tensors, t => t.Tensor.Name == "__metadata__");
    }

    [Fact]
    public void NullMetadata_CountsAsAbsent()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st.Metadata = "null";
        st.Write(dir.File(Single));

        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
        Assert.Equal(StFile.Read(dir.File(Single)).Tensors.Count, model.Tensors.Count());
    }

    // ---------------------------------------------------------------- the 8-byte header length, without allocating it

    [Theory]
    [InlineData(9223372036854775808UL)] // 2^63
    [InlineData(ulong.MaxValue)]
    [InlineData(4294967296UL)]
    public void AbsurdHeaderLength_FailsWithoutAllocating(ulong headerLength)
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File(Single);
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        File.WriteAllBytes(path, bytes);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CheckpointException>(() => SafeTensorsFile.Open(path).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        AssertError(e, path, null, "header length", $"header length {headerLength} runs past the end of the file (64 bytes)");
        Assert.True(allocated < 1 << 20, $"opening allocated {allocated} bytes");
    }

    [Fact]
    public void HeaderLengthOverTheLimit_FailsWithoutReadingIt()
    {
        // A sparse 120 MB file whose header length (110 MB) fits in the file but exceeds the 100 MB cap.
        using var dir = Fixtures.TempDir();
        string path = dir.File(Single);
        const long headerLength = 110_000_000;
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            var len = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(len, headerLength);
            fs.Write(len);
            fs.SetLength(120_000_000);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CheckpointException>(() => SafeTensorsFile.Open(path).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        AssertError(e, path, null, "header length", $"header length {headerLength} exceeds the {SafeTensorsFile.MaxHeaderBytes}-byte limit");
        Assert.True(allocated < 1 << 20, $"opening allocated {allocated} bytes");
    }

    // ---------------------------------------------------------------- errors whose tensor or field is not pinned

    [Fact]
    public void DataOffsets_TwoTensorsOnTheSameBytes()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        // q_proj.bias of layer 1 (256 bytes) is pointed at the start of k_proj.bias (128 bytes) and the bytes after it
        var (kb, _) = st.OffsetsOf("model.layers.1.self_attn.k_proj.bias");
        var q = st["model.layers.1.self_attn.q_proj.bias"];
        q.Offsets = [kb, kb + q.Data.Length];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        Assert.Equal(dir.File(Single), e.FilePath);
        Assert.Equal("data_offsets", e.Field);
        Assert.Contains("overlap", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.layers.1.self_attn.q_proj.bias", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.layers.1.self_attn.k_proj.bias", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CorruptShard_NamesTheShard()
    {
        using var dir = CopyModel("sharded-bf16");
        const string shard = "model-00006-of-00008.safetensors";
        var bytes = File.ReadAllBytes(dir.File(shard));
        File.WriteAllBytes(dir.File(shard), bytes.AsSpan(0, bytes.Length - 2).ToArray());

        var e = LoadFails(dir.Path);
        Assert.Equal(dir.File(shard), e.FilePath);
        Assert.Contains(shard, e.Message, StringComparison.Ordinal);
        Assert.Equal("data_offsets", e.Field);
        Assert.Contains("lie outside", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConfigHeadsTimesHeadDimOverflowingInt_IsRejected()
    {
        // 67108865 x 64 = 2^32 + 64 wraps to 64 in 32-bit arithmetic: the q_proj shape check would then expect [64, 64].
        var e = ConfigFails(c =>
        {
            c["num_attention_heads"] = 67108865;
            c["num_key_value_heads"] = 1;
            c["head_dim"] = 64;
        }, out string config);
        Assert.Equal(config, e.FilePath);
        Assert.Contains(config, e.Message, StringComparison.Ordinal);
        Assert.Contains("67108865", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.Field);
    }

    [Theory]
    [InlineData(2147483647)]
    [InlineData(2147483646)]
    public void ConfigWithHugeLayerCount_FailsAtTheFirstMissingLayer(int layers)
    {
        // Found by fuzzing: the layer array was sized from num_hidden_layers before any tensor was looked up (OutOfMemoryException).
        var e = ConfigFails(c => c["num_hidden_layers"] = layers, out _);
        Assert.Equal("model.layers.2.self_attn.q_proj.weight", e.TensorName);
        Assert.Contains("is missing from the checkpoint", e.Message, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- config defaults (Qwen2Config.Parse)

    private const string MinimalConfig = """
        {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 512}
        """;

    private static Qwen2Config ParseWith(Action<JsonObject> edit)
    {
        var o = JsonNode.Parse(MinimalConfig)!.AsObject();
        edit(o);
        return Qwen2Config.Parse(o.ToJsonString(), "test-config.json");
    }

    [Fact]
    public void Defaults_KvHeadsEqualHeads_HeadDimIsHiddenOverHeads_Untied()
    {
        var c = Qwen2Config.Parse(MinimalConfig, "test-config.json");
        Assert.Equal(4, c.NumAttentionHeads);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal(16, c.HeadDim);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(32768, c.MaxPositionEmbeddings);
        Assert.Empty(c.EosTokenIds);
        Assert.Null(c.BosTokenId);
        Assert.Null(c.LayerTypes);
        Assert.False(c.UseSlidingWindow);
    }

    [Fact]
    public void Defaults_GivenValuesWin()
    {
        var c = ParseWith(o =>
        {
            o["num_key_value_heads"] = 2;
            o["head_dim"] = 32;
            o["tie_word_embeddings"] = true;
        });
        Assert.Equal(2, c.NumKeyValueHeads);
        Assert.Equal(32, c.HeadDim);
        Assert.True(c.TieWordEmbeddings);
    }

    [Fact]
    public void Defaults_RopeParameters_Transformers5()
    {
        var c = ParseWith(o => o["rope_parameters"] = new JsonObject { ["rope_theta"] = 1000000.0 });
        Assert.Equal(1000000.0, c.RopeTheta);

        var typed = ParseWith(o => o["rope_parameters"] = new JsonObject { ["rope_theta"] = 5e5, ["rope_type"] = "default" });
        Assert.Equal(5e5, typed.RopeTheta);

        // rope_parameters wins over a stale top-level rope_theta
        var both = ParseWith(o =>
        {
            o["rope_theta"] = 10000.0;
            o["rope_parameters"] = new JsonObject { ["rope_theta"] = 2e6 };
        });
        Assert.Equal(2e6, both.RopeTheta);

        // and without a theta inside, the top-level one stays
        var classic = ParseWith(o =>
        {
            o["rope_theta"] = 3e5;
            o["rope_parameters"] = new JsonObject { ["rope_type"] = "default" };
        });
        Assert.Equal(3e5, classic.RopeTheta);
    }

    [Fact]
    public void Defaults_DefaultRopeScalingIsAccepted()
    {
        var c = ParseWith(o => o["rope_scaling"] = new JsonObject { ["type"] = "default" });
        Assert.Equal(10000.0, c.RopeTheta);
    }

    [Fact]
    public void Defaults_EosTokenId_IntOrList()
    {
        Assert.Equal(new[] { 151643 }, ParseWith(o => o["eos_token_id"] = 151643).EosTokenIds);
        Assert.Equal(new[] { 151645, 151643 }, ParseWith(o => o["eos_token_id"] = new JsonArray(151645, 151643)).EosTokenIds);
        Assert.Empty(ParseWith(o => o["eos_token_id"] = new JsonArray()).EosTokenIds);
    }

    [Fact]
    public void Defaults_JsonNullCountsAsAbsent()
    {
        var c = ParseWith(o =>
        {
            o["num_key_value_heads"] = null;
            o["head_dim"] = null;
            o["tie_word_embeddings"] = null;
            o["rope_theta"] = null;
            o["rope_scaling"] = null;
            o["rope_parameters"] = null;
            o["eos_token_id"] = null;
            o["bos_token_id"] = null;
            o["sliding_window"] = null;
            o["layer_types"] = null;
            o["rms_norm_eps"] = null;
            o["hidden_act"] = null;
            o["torch_dtype"] = null;
        });
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal(16, c.HeadDim);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Empty(c.EosTokenIds);
        Assert.Null(c.BosTokenId);
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Null(c.LayerTypes);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Null(c.TorchDtype);
    }

    [Fact]
    public void Defaults_NullModelType_IsMissing()
    {
        var e = Assert.Throws<CheckpointException>(() => ParseWith(o => o["model_type"] = null));
        AssertError(e, "test-config.json", null, "model_type", "missing");
    }

    [Fact]
    public void Defaults_RealConfigs()
    {
        // the transformers 5 layout of the sharded fixture and the classic one of tiny-f32
        var t5 = Qwen2Config.Load(Path.Combine(Fixtures.Model("sharded-bf16"), "config.json"));
        Assert.Equal(1000000.0, t5.RopeTheta);
        Assert.Equal(new[] { "full_attention", "full_attention", "full_attention" }, t5.LayerTypes!);
        Assert.False(t5.TieWordEmbeddings);
        Assert.Equal("bfloat16", t5.TorchDtype);
        Assert.Empty(t5.EosTokenIds);

        var classic = Qwen2Config.Load(Path.Combine(Fixtures.Model("tiny-f32"), "config.json"));
        Assert.Equal(2, classic.NumKeyValueHeads);
        Assert.Equal(16, classic.HeadDim);
        Assert.True(classic.TieWordEmbeddings);
        Assert.Equal(new[] { 511 }, classic.EosTokenIds);
        Assert.Equal(510, classic.BosTokenId);
    }

    // ================================================================ helpers

    private static void AssertError(CheckpointException e, string file, string? tensor, string? field, params string[] words)
    {
        Assert.Equal(file, e.FilePath);
        Assert.Contains(Path.GetFileName(file), e.Message, StringComparison.Ordinal);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Equal(tensor, e.TensorName);
        if (tensor is not null) Assert.Contains($"'{tensor}'", e.Message, StringComparison.Ordinal);
        Assert.Equal(field, e.Field);
        if (field is not null && tensor is null) Assert.Contains($"'{field}'", e.Message, StringComparison.Ordinal);
        foreach (var w in words) Assert.Contains(w, e.Message, StringComparison.Ordinal);
    }

    private static CheckpointException LoadFails(string dir) =>
        Assert.Throws<CheckpointException>(() =>
        {
            using var model = Qwen2Model.Load(dir, new ModelOptions { Threads = 1 });
        });

    private static CheckpointException ConfigFails(Action<JsonObject> edit, out string configPath)
    {
        using var dir = CopyModel("tiny-f32");
        EditConfig(dir, edit);
        configPath = dir.File("config.json");
        return LoadFails(dir.Path);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryCollection
{
    public const string Name = "process memory (runs alone)";
}

/// <summary>
/// BF16 weights stay memory-mapped: loading a large BF16 checkpoint must not copy (or widen) it into process memory.
/// Runs alone so other tests' allocations do not move the resident set.
/// </summary>
[Collection(ProcessMemoryCollection.Name)]
public sealed class LoadingErrorTestsMappedWeights(ITestOutputHelper output)
{
    [Fact]
    public void Bf16Weights_AreMappedNotCopied()
    {
        using var dir = Fixtures.TempDir();
        const int vocab = 65536, hidden = 1024, heads = 8, inter = 64;
        File.WriteAllText(dir.File("config.json"), $$"""
            {"model_type": "qwen2", "hidden_size": {{hidden}}, "intermediate_size": {{inter}}, "num_hidden_layers": 1,
             "num_attention_heads": {{heads}}, "num_key_value_heads": {{heads}}, "vocab_size": {{vocab}},
             "max_position_embeddings": 512, "tie_word_embeddings": true, "torch_dtype": "bfloat16"}
            """);
        var tensors = new (string Name, long[] Shape)[]
        {
            ("model.embed_tokens.weight", [vocab, hidden]),
            ("model.layers.0.input_layernorm.weight", [hidden]),
            ("model.layers.0.self_attn.q_proj.weight", [hidden, hidden]),
            ("model.layers.0.self_attn.q_proj.bias", [hidden]),
            ("model.layers.0.self_attn.k_proj.weight", [hidden, hidden]),
            ("model.layers.0.self_attn.k_proj.bias", [hidden]),
            ("model.layers.0.self_attn.v_proj.weight", [hidden, hidden]),
            ("model.layers.0.self_attn.v_proj.bias", [hidden]),
            ("model.layers.0.self_attn.o_proj.weight", [hidden, hidden]),
            ("model.layers.0.post_attention_layernorm.weight", [hidden]),
            ("model.layers.0.mlp.gate_proj.weight", [inter, hidden]),
            ("model.layers.0.mlp.up_proj.weight", [inter, hidden]),
            ("model.layers.0.mlp.down_proj.weight", [hidden, inter]),
            ("model.norm.weight", [hidden]),
        };
        string path = dir.File(CheckpointFiles.SingleFile);
        long fileSize = WriteBf16Checkpoint(path, tensors);
        Assert.True(fileSize > 128L << 20, $"checkpoint is only {fileSize} bytes");

        // JIT the load path first so code pages do not count
        using (Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 1 })) { }

        // The file mapping's own resident pages (smaps) say exactly what was touched, and the process's anonymous memory
        // says what was copied; whole-process RSS moves with the GC returning memory and made this test flaky.
        long anonBefore = AnonymousBytes();
        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
        long copied = AnonymousBytes() - anonBefore;
        long mappedAfterLoad = MappedBytes(path);

        Assert.Equal(fileSize - 8 - StHeaderLength(path), model.WeightBytes);
        Assert.True(copied < fileSize / 4, $"loading a {fileSize}-byte BF16 checkpoint grew anonymous memory by {copied} bytes");
        Assert.True(mappedAfterLoad < fileSize / 4, $"loading touched {mappedAfterLoad} bytes of the {fileSize}-byte mapping");

        // The measurement does see mapped pages: one forward reads the whole tied embedding (lm_head) through the mapping.
        var logits = model.Forward([1]);
        Assert.Equal(vocab, logits.VocabSize);
        long mappedAfterForward = MappedBytes(path);
        output.WriteLine($"file {fileSize} bytes; anonymous +{copied} after load; mapping resident {mappedAfterLoad} after load, {mappedAfterForward} after one forward");
        Assert.True(mappedAfterForward > fileSize / 2, $"a forward over a {fileSize}-byte checkpoint left only {mappedAfterForward} bytes of its mapping resident");
    }

    private static long StHeaderLength(string path)
    {
        using var fs = File.OpenRead(path);
        Span<byte> len = stackalloc byte[8];
        fs.ReadExactly(len);
        return (long)BinaryPrimitives.ReadUInt64LittleEndian(len);
    }

    /// <summary>Streams a BF16 checkpoint to disk in 1 MiB chunks; every value is bf16 0x3C00 (1/128) with a little variation.</summary>
    private static long WriteBf16Checkpoint(string path, (string Name, long[] Shape)[] tensors)
    {
        var sb = new StringBuilder("{\"__metadata__\": {\"format\": \"pt\"}");
        long at = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(2L, (a, d) => a * d);
            sb.Append(", \"").Append(name).Append("\": {\"dtype\": \"BF16\", \"shape\": [").Append(string.Join(", ", shape))
              .Append("], \"data_offsets\": [").Append(at).Append(", ").Append(at + bytes).Append("]}");
            at += bytes;
        }
        sb.Append('}');
        while (sb.Length % 8 != 0) sb.Append(' ');
        var header = Encoding.ASCII.GetBytes(sb.ToString());

        var chunk = new byte[1 << 20];
        for (int i = 0; i < chunk.Length; i += 2) { chunk[i] = (byte)(i * 7); chunk[i + 1] = (byte)(0x3C ^ (i >> 9 & 1)); }
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        for (long left = at; left > 0; left -= chunk.Length) fs.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
        return fs.Length;
    }

    /// <summary>VmRSS from /proc/self/status where there is one, else the working set.</summary>
    /// <summary>Resident bytes of every mapping of <paramref name="path"/> in this process, from /proc/self/smaps.</summary>
    internal static long MappedBytes(string path)
    {
        string full = Path.GetFullPath(path);
        long total = 0;
        bool inFile = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (IsMappingHeader(line)) inFile = line.EndsWith(" " + full, StringComparison.Ordinal);
            else if (inFile && line.StartsWith("Rss:", StringComparison.Ordinal)) total += Kilobytes(line) * 1024;
        }
        return total;
    }

    /// <summary>The process's resident anonymous memory (heap, GC, native allocations), after a full collection.</summary>
    internal static long AnonymousBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) return Kilobytes(line) * 1024;
        throw new InvalidOperationException("/proc/self/status has no RssAnon line");
    }

    // A mapping header starts with its address range "start-end"; field lines start with "Name:".
    private static bool IsMappingHeader(string line)
    {
        int space = line.IndexOf(' ');
        return space > 0 && line.AsSpan(0, space).Contains('-') && !line.AsSpan(0, space).ContainsAnyExcept("0123456789abcdef-");
    }

    private static long Kilobytes(string line) =>
        long.Parse(line[(line.IndexOf(':') + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}
