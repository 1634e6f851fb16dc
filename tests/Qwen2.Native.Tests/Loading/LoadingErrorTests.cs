using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests;

/// <summary>
/// Unusable checkpoints: each test copies a valid fixture into a temporary directory, breaks one thing, and checks
/// that loading fails with a <see cref="CheckpointException"/> naming the file and the tensor or field at fault.
/// </summary>
public sealed class LoadingErrorTests
{
    private const string Single = CheckpointFiles.SingleFile;
    private const string Index = CheckpointFiles.IndexFile;

    // ---------------------------------------------------------------- missing tensors

    [Theory]
    [InlineData("model.layers.1.mlp.up_proj.weight")]
    [InlineData("model.embed_tokens.weight")]
    [InlineData("model.layers.0.self_attn.q_proj.bias")]
    [InlineData("model.norm.weight")]
    public void MissingTensor_NamesFileAndTensor(string tensor)
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st.Remove(tensor);
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), tensor, null, "is missing from the checkpoint");
    }

    [Fact]
    public void MissingLmHead_WhenUntied_NamesLmHead()
    {
        using var dir = CopyModel("untied-f16-mha");
        var st = StFile.Read(dir.File(Single));
        st.Remove("lm_head.weight");
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "lm_head.weight", null, "is missing");
    }

    [Fact]
    public void TiedCheckpoint_DeclaredUntied_NeedsLmHead()
    {
        // tiny-f32 has no lm_head.weight; tie_word_embeddings false must not fall back to the embedding.
        using var dir = CopyModel("tiny-f32");
        Assert.DoesNotContain("lm_head.weight", StFile.Read(dir.File(Single)).Tensors.Select(t => t.Name));
        EditConfig(dir, c => c["tie_word_embeddings"] = false);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "lm_head.weight", null, "is missing");
    }

    [Fact]
    public void TieWordEmbeddingsAbsent_MeansUntied_NeedsLmHead()
    {
        using var dir = CopyModel("tiny-f32");
        EditConfig(dir, c => c.Remove("tie_word_embeddings"));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "lm_head.weight", null, "is missing");
    }

    [Fact]
    public void MissingTensor_Sharded_NamesIndex()
    {
        using var dir = CopyModel("sharded-bf16");
        const string tensor = "model.layers.1.mlp.up_proj.weight";
        string shard = ShardOf(dir, tensor);
        var st = StFile.Read(dir.File(shard));
        st.Remove(tensor);
        st.Write(dir.File(shard));
        EditIndex(dir, map => map.Remove(tensor));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Index), tensor, null, "is missing from the checkpoint");
    }

    [Fact]
    public void TensorForgottenByIndex_IsStillFoundInItsShard()
    {
        using var dir = CopyModel("sharded-bf16");
        EditIndex(dir, map => map.Remove("model.layers.1.mlp.up_proj.weight"));

        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
        Assert.Contains(model.Tensors, t => t.Tensor.Name == "model.layers.1.mlp.up_proj.weight");
    }

    // ---------------------------------------------------------------- shapes and dtypes the model cannot use

    [Theory]
    [InlineData("model.layers.0.self_attn.k_proj.weight", "[64, 32]", "[32, 64]")] // transposed, same byte count
    [InlineData("model.layers.1.mlp.down_proj.weight", "[176, 64]", "[64, 176]")]
    [InlineData("model.norm.weight", "[1, 64]", "[64]")]
    [InlineData("model.layers.0.self_attn.v_proj.bias", "[2, 16]", "[32]")]
    public void WrongShape_NamesExpectedAndFound(string tensor, string found, string expected)
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st[tensor].Shape = found;
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), tensor, "shape", $"has shape {found}, expected {expected}");
    }

    [Fact]
    public void ConfigDisagreeingWithWeights_IsAShapeError()
    {
        using var dir = CopyModel("tiny-f32");
        EditConfig(dir, c => c["vocab_size"] = 513);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "model.embed_tokens.weight", "shape", "[512, 64]", "expected [513, 64]");
    }

    [Theory]
    [InlineData("model.norm.weight", "I64")]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "F64")]
    [InlineData("model.layers.1.self_attn.k_proj.bias", "I32")]
    [InlineData("model.embed_tokens.weight", "U8")]
    [InlineData("model.layers.1.mlp.gate_proj.weight", "F8_E4M3")]
    public void UnsupportedDtype_UsedByModel_NamesDtype(string tensor, string dtype)
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        var t = st[tensor];
        t.DType = dtype;
        t.Data = new byte[t.Data.Length / 4 * DTypeSize(dtype)];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), tensor, "dtype", $"has dtype {dtype}", "F32, BF16 and F16");
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

    [Theory]
    [InlineData("Q4")]
    [InlineData("f32")]
    [InlineData("FP32")]
    [InlineData("")]
    public void UnknownDtypeString_NamesTensorAndDtype(string dtype)
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st["model.layers.0.mlp.down_proj.weight"].DType = dtype;
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "model.layers.0.mlp.down_proj.weight", "dtype", $"unknown dtype '{dtype}'");
    }

    // ---------------------------------------------------------------- the 8-byte header length

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void FileShorterThan8Bytes(int length)
    {
        using var dir = CopyModel("tiny-f32");
        File.WriteAllBytes(dir.File(Single), new byte[length]);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), null, "header length", $"file is {length} bytes", "too short");
    }

    [Fact]
    public void HeaderLengthPastEndOfFile()
    {
        using var dir = CopyModel("tiny-f32");
        string path = dir.File(Single);
        var bytes = File.ReadAllBytes(path);
        // keep the original length prefix but cut the file inside the header
        File.WriteAllBytes(path, bytes.AsSpan(0, 100).ToArray());
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(bytes);

        var e = LoadFails(dir.Path);
        AssertError(e, path, null, "header length", $"header length {declared} runs past the end of the file (100 bytes)");
    }

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

    // ---------------------------------------------------------------- data offsets

    [Fact]
    public void DataOffsets_OutsideTheDataSection()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        long dataLength = st.DataLength;
        var t = st["model.layers.0.input_layernorm.weight"]; // 256 bytes
        t.Offsets = [dataLength - 128, dataLength + 128];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), t.Name, "data_offsets",
            $"data_offsets [{dataLength - 128}, {dataLength + 128}] lie outside the {dataLength}-byte data section");
    }

    [Fact]
    public void DataOffsets_TruncatedFile_LastTensorOutside()
    {
        using var dir = CopyModel("tiny-f32");
        string path = dir.File(Single);
        var st = StFile.Read(path);
        var last = st.Tensors[^1];
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length - 10).ToArray());

        var e = LoadFails(dir.Path);
        AssertError(e, path, last.Name, "data_offsets", "lie outside", $"{st.DataLength - 10}-byte data section");
    }

    [Fact]
    public void DataOffsets_Overlap()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        var (begin, end) = st.OffsetsOf("model.layers.0.mlp.down_proj.weight");
        var (prevBegin, prevEnd) = st.OffsetsOf("model.layers.0.input_layernorm.weight");
        Assert.Equal(begin, prevEnd); // stored in this order in the fixture
        st["model.layers.0.mlp.down_proj.weight"].Offsets = [begin - 4, end - 4];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "model.layers.0.mlp.down_proj.weight", "data_offsets",
            $"bytes [{begin - 4}, {end - 4}) overlap tensor 'model.layers.0.input_layernorm.weight' at [{prevBegin}, {prevEnd})");
    }

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
    public void DataOffsets_Gap()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        var t = st["model.layers.0.input_layernorm.weight"];
        var (begin, end) = st.OffsetsOf(t.Name);
        t.Offsets = [begin + 4, end + 4];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), t.Name, "data_offsets", $"starts at byte {begin + 4}, leaving a gap after byte {begin}");
    }

    [Fact]
    public void DataOffsets_TrailingBytesNoTensorCovers()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        long covered = st.DataLength;
        st.Trailing = new byte[16];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), null, "data_offsets", $"cover {covered} bytes of data but the data section holds {covered + 16}");
    }

    [Fact]
    public void DataOffsets_EndBeforeBegin()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        var t = st["model.layers.1.input_layernorm.weight"];
        var (begin, end) = st.OffsetsOf(t.Name);
        t.Offsets = [end, begin];
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), t.Name, "data_offsets", $"data_offsets [{end}, {begin}] end before they begin");
    }

    [Theory]
    [InlineData("model.norm.weight", "F32", "[63]", 252)]
    [InlineData("model.norm.weight", "F32", "[65]", 260)]
    [InlineData("model.norm.weight", "BF16", "[64]", 128)]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "F32", "[64, 63]", 16128)]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "F32", "[]", 4)]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "F32", "[64, 0]", 0)]
    public void ByteCount_DisagreesWithShapeTimesDtype(string tensor, string dtype, string shape, long needed)
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        var t = st[tensor];
        var (begin, end) = st.OffsetsOf(tensor);
        t.DType = dtype;
        t.Shape = shape;
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), tensor, "data_offsets",
            $"shape {shape} of {dtype} needs {needed} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
    }

    [Theory]
    [InlineData("[-1, 64]", "dimensions must be non-negative integers")]
    [InlineData("[64, -4096]", "dimensions must be non-negative integers")]
    [InlineData("[64.5]", "dimensions must be non-negative integers")]
    [InlineData("[\"64\"]", "dimensions must be non-negative integers")]
    [InlineData("[null]", "dimensions must be non-negative integers")]
    [InlineData("[99999999999999999999]", "dimensions must be non-negative integers")]
    [InlineData("[4294967296, 4294967296]", "too many elements to address")]
    [InlineData("[9223372036854775807]", "too many elements to address")]
    [InlineData("[3037000500, 3037000500]", "too many elements to address")] // product just over 2^63
    [InlineData("[2305843009213693952]", "too many elements to address")] // 2^61 elements x 4 bytes = 2^63
    public void BadDims_NamesTensorAndShape(string shape, string words)
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st["model.layers.1.mlp.gate_proj.weight"].Shape = shape;
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), "model.layers.1.mlp.gate_proj.weight", "shape", $"has shape {shape}", words);
    }

    [Theory]
    [InlineData("[-8, 0]", "data offset -8 is not a non-negative integer")]
    [InlineData("[0, 1.5]", "data offset 1.5 is not a non-negative integer")]
    [InlineData("[\"0\", 16]", "data offset \"0\" is not a non-negative integer")]
    [InlineData("[0]", "has no 'data_offsets' pair")]
    [InlineData("[0, 16, 32]", "has no 'data_offsets' pair")]
    [InlineData("{\"begin\": 0}", "has no 'data_offsets' pair")]
    public void MalformedDataOffsets(string offsets, string words)
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File(Single);
        WriteRaw(path, $"{{\"t\": {{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": {offsets}}}}}", new byte[16]);

        var e = Assert.Throws<CheckpointException>(() => SafeTensorsFile.Open(path).Dispose());
        AssertError(e, path, "t", "data_offsets", words);
    }

    // ---------------------------------------------------------------- the JSON header

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"t\": ")]
    [InlineData("{\"t\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16],}}")]
    [InlineData("{\"t\": {\"dtype\": \"F32\"} // comment\n}")]
    [InlineData("{\"t\": {}} trailing")]
    [InlineData("{'t': {}}")]
    public void MalformedJsonHeader(string header)
    {
        using var dir = CopyModel("tiny-f32");
        WriteRaw(dir.File(Single), header, new byte[16]);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), null, "header", "malformed JSON header");
        Assert.IsAssignableFrom<JsonException>(e.InnerException);
    }

    [Fact]
    public void InvalidUtf8InHeader_IsMalformed()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File(Single);
        var header = Encoding.ASCII.GetBytes("{\"tXX\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}}");
        header[3] = 0xFF; // bytes that are not UTF-8 inside the tensor name
        header[4] = 0xFE;
        WriteRawBytes(path, header, []);

        var e = Assert.Throws<CheckpointException>(() => SafeTensorsFile.Open(path).Dispose());
        AssertError(e, path, null, "header", "not valid UTF-8");
    }

    [Theory]
    [InlineData("{\"t\\ud800\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}")]
    [InlineData("{\"t\": {\"dtype\": \"F3\\udc00\", \"shape\": [4], \"data_offsets\": [0, 16]}}")]
    [InlineData("{\"__metadata__\": {}, \"t\\udfff\\ud800\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}")]
    public void LoneSurrogateEscapeInHeader_IsACheckpointError(string header)
    {
        // valid UTF-8 and valid JSON, but "\ud800" is no UTF-16 string: System.Text.Json throws InvalidOperationException reading it
        using var dir = CopyModel("tiny-f32");
        WriteRaw(dir.File(Single), header, new byte[16]);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), null, "header", "invalid string");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}]")]
    [InlineData("42")]
    [InlineData("\"model.embed_tokens.weight\"")]
    [InlineData("null")]
    public void HeaderNotAnObject(string header)
    {
        using var dir = CopyModel("tiny-f32");
        WriteRaw(dir.File(Single), header, new byte[16]);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), null, "header", "the header must be a JSON object");
    }

    [Theory]
    [InlineData("5", null, "header entry is not an object")]
    [InlineData("[\"F32\", [4], [0, 16]]", null, "header entry is not an object")]
    [InlineData("{\"shape\": [4], \"data_offsets\": [0, 16]}", "dtype", "has no string 'dtype'")]
    [InlineData("{\"dtype\": 4, \"shape\": [4], \"data_offsets\": [0, 16]}", "dtype", "has no string 'dtype'")]
    [InlineData("{\"dtype\": \"F32\", \"data_offsets\": [0, 16]}", "shape", "has no 'shape' array")]
    [InlineData("{\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 16]}", "shape", "has no 'shape' array")]
    [InlineData("{\"dtype\": \"F32\", \"shape\": [4]}", "data_offsets", "has no 'data_offsets' pair")]
    public void MalformedHeaderEntry(string entry, string? field, string words)
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File(Single);
        WriteRaw(path, $"{{\"t\": {entry}}}", new byte[16]);

        var e = Assert.Throws<CheckpointException>(() => SafeTensorsFile.Open(path).Dispose());
        AssertError(e, path, "t", field, words);
    }

    [Fact]
    public void DuplicateTensorNames_AreRejected()
    {
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        var t = st["model.layers.0.self_attn.k_proj.bias"];
        // a second entry of the same name with its own, different bytes: which one would the model get?
        st.Tensors.Add(new StTensor(t.Name, t.DType, t.Shape, new byte[t.Data.Length]));
        st.Write(dir.File(Single));
        // System.Text.Json itself accepts the duplicate...
        using (var doc = JsonDocument.Parse(StFile.HeaderBytes(dir.File(Single))))
            Assert.Equal(2, doc.RootElement.EnumerateObject().Count(p => p.Name == t.Name));

        // ...the loader does not.
        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), t.Name, null, "is listed twice in the header");
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

    [Theory]
    [InlineData("5", "is Number")]
    [InlineData("[\"pt\"]", "is Array")]
    [InlineData("\"pt\"", "is String")]
    [InlineData("{\"format\": 1}", "key 'format' is Number")]
    [InlineData("{\"format\": \"pt\", \"nested\": {\"a\": \"b\"}}", "key 'nested' is Object")]
    [InlineData("{\"format\": null}", "key 'format' is Null")]
    public void MetadataOfWrongType_IsRejected(string metadata, string words)
    {
        // The reference implementation reads __metadata__ as a map of strings; this loader used to skip whatever it held.
        using var dir = CopyModel("tiny-f32");
        var st = StFile.Read(dir.File(Single));
        st.Metadata = metadata;
        st.Write(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Single), null, "__metadata__", words);
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

    // ---------------------------------------------------------------- sharded checkpoints

    [Theory]
    [InlineData("")]
    [InlineData("{\"weight_map\": {")]
    [InlineData("{\"weight_map\": {\"model.embed_tokens.weight\": model-00001-of-00008.safetensors}}")]
    [InlineData("{\"weight_map\": {}},")]
    public void ShardIndex_Malformed(string text)
    {
        using var dir = CopyModel("sharded-bf16");
        File.WriteAllText(dir.File(Index), text);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Index), null, null, "malformed JSON");
    }

    [Theory]
    [InlineData("{\"metadata\": {\"total_size\": 409216}}")]
    [InlineData("{\"weight_map\": [\"model-00001-of-00008.safetensors\"]}")]
    [InlineData("{\"weight_map\": null}")]
    [InlineData("[{\"weight_map\": {}}]")]
    public void ShardIndex_WithoutWeightMap(string text)
    {
        using var dir = CopyModel("sharded-bf16");
        File.WriteAllText(dir.File(Index), text);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Index), null, "weight_map", "has no 'weight_map' object");
    }

    [Fact]
    public void ShardIndex_NamesAMissingShardFile()
    {
        using var dir = CopyModel("sharded-bf16");
        const string shard = "model-00005-of-00008.safetensors";
        File.Delete(dir.File(shard));
        string firstTensor = IndexMap(dir).First(p => p.Value == shard).Key;

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Index), firstTensor, "weight_map", $"names shard '{shard}', which is not in");
    }

    [Fact]
    public void ShardIndex_NamesATensorTheShardDoesNotHold()
    {
        using var dir = CopyModel("sharded-bf16");
        const string tensor = "model.layers.0.mlp.gate_proj.weight";
        string wrong = IndexMap(dir).Values.Distinct().First(s => s != ShardOf(dir, tensor));
        EditIndex(dir, map => map[tensor] = wrong);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(wrong), tensor, null, $"is mapped to this shard by {Index} but the shard does not hold it");
    }

    [Fact]
    public void ShardIndex_NonStringFileName()
    {
        using var dir = CopyModel("sharded-bf16");
        EditIndex(dir, map => map["model.embed_tokens.weight"] = 1);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Index), "model.embed_tokens.weight", "weight_map", "maps to a non-string file name");
    }

    [Theory]
    [InlineData("{\"weight_map\": {\"model.embed_tokens.weight\\ud800\": \"model-00001-of-00008.safetensors\"}}")]
    [InlineData("{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00008\\udc00.safetensors\"}}")]
    public void ShardIndex_LoneSurrogateEscape(string text)
    {
        using var dir = CopyModel("sharded-bf16");
        File.WriteAllText(dir.File(Index), text);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(Index), null, "weight_map", "invalid string");
    }

    [Theory]
    [InlineData("../model-00001-of-00008.safetensors")]
    [InlineData("..\\model-00001-of-00008.safetensors")]
    [InlineData("./../model-00001-of-00008.safetensors")]
    [InlineData("sub/../../model-00001-of-00008.safetensors")]
    [InlineData("ABSOLUTE")]
    [InlineData("")]
    public void ShardIndex_PathTraversal_IsRejected(string shard)
    {
        // A valid shard holding the tensor sits right where the traversal points, so following it would "work".
        using var outer = Fixtures.TempDir();
        string ckpt = Path.Combine(outer.Path, "ckpt");
        CopyDirectory(Fixtures.Model("sharded-bf16"), ckpt);
        File.Copy(Path.Combine(ckpt, "model-00001-of-00008.safetensors"), outer.File("model-00001-of-00008.safetensors"));
        Directory.CreateDirectory(Path.Combine(ckpt, "sub"));
        if (shard == "ABSOLUTE") shard = outer.File("model-00001-of-00008.safetensors");
        string index = Path.Combine(ckpt, Index);
        EditIndexAt(index, map => map["model.embed_tokens.weight"] = shard);

        var e = LoadFails(ckpt);
        AssertError(e, index, "model.embed_tokens.weight", "weight_map", $"names shard \"{shard}\"", "not a file name in the checkpoint directory");
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
    public void ShardedTensorWithWrongShape_NamesItsShard()
    {
        using var dir = CopyModel("sharded-bf16");
        const string tensor = "model.layers.2.self_attn.o_proj.weight";
        string shard = ShardOf(dir, tensor);
        var st = StFile.Read(dir.File(shard));
        st[tensor].Shape = "[32, 128]";
        st.Write(dir.File(shard));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File(shard), tensor, "shape", "has shape [32, 128], expected [64, 64]");
    }

    // ---------------------------------------------------------------- the checkpoint directory

    [Fact]
    public void DirectoryMissing()
    {
        using var dir = Fixtures.TempDir();
        string missing = dir.File("no-such-checkpoint");

        var e = LoadFails(missing);
        AssertError(e, missing, null, null, "checkpoint directory not found");
    }

    [Fact]
    public void NoWeightFiles()
    {
        using var dir = CopyModel("tiny-f32");
        File.Delete(dir.File(Single));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.Path, null, null, $"no {Single} and no {Index}");
    }

    [Fact]
    public void ConfigMissing()
    {
        using var dir = CopyModel("tiny-f32");
        File.Delete(dir.File("config.json"));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File("config.json"), null, null, "file not found");
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"model_type\": \"qwen2\", ")]
    [InlineData("{\"model_type\": qwen2}")]
    [InlineData("{\"hidden_size\": 64} {}")]
    public void ConfigMalformed(string text)
    {
        using var dir = CopyModel("tiny-f32");
        File.WriteAllText(dir.File("config.json"), text);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File("config.json"), null, null, "malformed JSON");
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"qwen2\"")]
    public void ConfigNotAnObject(string text)
    {
        using var dir = CopyModel("tiny-f32");
        File.WriteAllText(dir.File("config.json"), text);

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File("config.json"), null, null, "must be a JSON object");
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen3")]
    [InlineData("Qwen2")]
    public void ConfigOtherModelType(string modelType)
    {
        var e = ConfigFails(c => c["model_type"] = modelType, out string config);
        AssertError(e, config, null, "model_type", $"is \"{modelType}\"", "model_type \"qwen2\"");
    }

    [Fact]
    public void ConfigWithoutModelType()
    {
        var e = ConfigFails(c => c.Remove("model_type"), out string config);
        AssertError(e, config, null, "model_type", "missing");
    }

    [Fact]
    public void ConfigHeadsNotDivisibleByKvHeads()
    {
        var e = ConfigFails(c => c["num_key_value_heads"] = 3, out string config);
        AssertError(e, config, null, "num_key_value_heads", "3 does not divide num_attention_heads (4)");
    }

    [Theory]
    [InlineData("hidden_size", 0)]
    [InlineData("hidden_size", -64)]
    [InlineData("num_hidden_layers", -1)]
    [InlineData("num_hidden_layers", 0)]
    [InlineData("num_attention_heads", 0)]
    [InlineData("num_key_value_heads", 0)]
    [InlineData("num_key_value_heads", -2)]
    [InlineData("intermediate_size", 0)]
    [InlineData("vocab_size", -512)]
    [InlineData("max_position_embeddings", 0)]
    [InlineData("head_dim", 0)]
    [InlineData("head_dim", -16)]
    public void ConfigNonPositiveSize(string field, int value)
    {
        var e = ConfigFails(c => c[field] = value, out string config);
        AssertError(e, config, null, field, $"is {value}; it must be positive");
    }

    [Theory]
    [InlineData("hidden_size", "\"64\"", "an integer")]
    [InlineData("num_hidden_layers", "2.5", "an integer")]
    [InlineData("vocab_size", "[512]", "an integer")]
    [InlineData("num_attention_heads", "true", "an integer")]
    [InlineData("intermediate_size", "1e20", "an integer")]
    [InlineData("rope_theta", "\"1e6\"", "a number")]
    [InlineData("rms_norm_eps", "{}", "a number")]
    [InlineData("tie_word_embeddings", "\"true\"", "true or false")]
    [InlineData("tie_word_embeddings", "1", "true or false")]
    [InlineData("model_type", "2", "a string")]
    [InlineData("layer_types", "\"full_attention\"", "an array of strings")]
    [InlineData("layer_types", "[1, 2]", "an array of strings")]
    [InlineData("eos_token_id", "\"511\"", "an integer or an array of integers")]
    [InlineData("eos_token_id", "[511, \"x\"]", "an integer or an array of integers")]
    [InlineData("bos_token_id", "[510]", "an integer")]
    public void ConfigWrongJsonType(string field, string json, string expected)
    {
        var e = ConfigFails(c => c[field] = JsonNode.Parse(json), out string config);
        AssertError(e, config, null, field, $"is {JsonNode.Parse(json)!.ToJsonString()}; expected {expected}");
    }

    [Theory]
    [InlineData("rope_scaling", "{\"type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}", "yarn")]
    [InlineData("rope_scaling", "{\"rope_type\": \"dynamic\", \"factor\": 2.0}", "dynamic")]
    [InlineData("rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0}", "linear")]
    [InlineData("rope_parameters", "{\"rope_type\": \"yarn\", \"rope_theta\": 1000000.0, \"factor\": 4.0}", "yarn")]
    public void ConfigUnsupportedRopeScaling(string field, string json, string type)
    {
        var e = ConfigFails(c => c[field] = JsonNode.Parse(json), out string config);
        AssertError(e, config, null, field, $"rope type \"{type}\" is not supported");
    }

    [Theory]
    [InlineData("[\"full_attention\"]", "lists 1 layers, num_hidden_layers is 2")]
    [InlineData("[\"full_attention\", \"full_attention\", \"full_attention\"]", "lists 3 layers, num_hidden_layers is 2")]
    [InlineData("[]", "lists 0 layers, num_hidden_layers is 2")]
    [InlineData("[\"full_attention\", \"linear_attention\"]", "has \"linear_attention\"")]
    public void ConfigLayerTypesMismatch(string layerTypes, string words)
    {
        var e = ConfigFails(c => c["layer_types"] = JsonNode.Parse(layerTypes), out string config);
        AssertError(e, config, null, "layer_types", words);
    }

    [Theory]
    [InlineData(33)]
    [InlineData(15)]
    [InlineData(1)]
    public void ConfigOddHeadDim(int headDim)
    {
        var e = ConfigFails(c => c["head_dim"] = headDim, out string config);
        AssertError(e, config, null, "head_dim", $"is {headDim}; RoPE needs an even head dimension");
    }

    [Fact]
    public void ConfigOddDerivedHeadDim()
    {
        // 68 / 4 = 17
        var e = ConfigFails(c => c["hidden_size"] = 68, out string config);
        AssertError(e, config, null, "head_dim", "is 17; RoPE needs an even head dimension");
    }

    [Fact]
    public void ConfigHiddenNotAMultipleOfHeads_WithoutHeadDim()
    {
        var e = ConfigFails(c => c["hidden_size"] = 66, out string config);
        AssertError(e, config, null, "head_dim", "hidden_size 66 is not a multiple of num_attention_heads 4");
    }

    [Theory]
    [InlineData("hidden_act", "\"gelu\"", "is \"gelu\"")]
    [InlineData("rms_norm_eps", "0", "is 0; it must be positive")]
    [InlineData("rms_norm_eps", "-1e-6", "it must be positive")]
    [InlineData("rope_theta", "0", "is 0; it must be positive")]
    [InlineData("rope_theta", "-10000", "it must be positive")]
    [InlineData("rope_theta", "1e400", "it must be positive")]
    public void ConfigOtherInvalidValues(string field, string json, string words)
    {
        var e = ConfigFails(c => c[field] = JsonNode.Parse(json), out string config);
        AssertError(e, config, null, field, words);
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

    [Theory]
    [InlineData("model_type", "\"qwen2\\ud800\"")]
    [InlineData("hidden_act", "\"\\udc00\"")]
    [InlineData("torch_dtype", "\"bfloat16\\ud800\"")]
    [InlineData("layer_types", "[\"full_attention\", \"\\ud800\"]")]
    public void ConfigLoneSurrogateEscape(string field, string json)
    {
        // JsonNode cannot hold such a string, so a placeholder is replaced in the text
        using var dir = CopyModel("tiny-f32");
        EditConfig(dir, c => c[field] = "@@placeholder@@");
        string path = dir.File("config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"@@placeholder@@\"", json, StringComparison.Ordinal));

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File("config.json"), null, field, "not a valid string");
    }

    [Fact]
    public void ConfigErrors_AreReportedBeforeTheWeightsAreOpened()
    {
        // broken config and broken weights: the config is read first and is what the message names
        using var dir = CopyModel("tiny-f32");
        File.WriteAllBytes(dir.File(Single), [1, 2, 3]);
        EditConfig(dir, c => c["model_type"] = "llama");

        var e = LoadFails(dir.Path);
        AssertError(e, dir.File("config.json"), null, "model_type", "\"llama\"");
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

    private static TempDir CopyModel(string name)
    {
        var dir = Fixtures.TempDir();
        CopyDirectory(Fixtures.Model(name), dir.Path);
        return dir;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    private static void EditConfig(TempDir dir, Action<JsonObject> edit)
    {
        string path = dir.File("config.json");
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    private static Dictionary<string, string> IndexMap(TempDir dir)
    {
        var o = JsonNode.Parse(File.ReadAllText(dir.File(Index)))!;
        return o["weight_map"]!.AsObject().ToDictionary(p => p.Key, p => (string)p.Value!);
    }

    private static string ShardOf(TempDir dir, string tensor) => IndexMap(dir)[tensor];

    private static void EditIndex(TempDir dir, Action<JsonObject> editMap) => EditIndexAt(dir.File(Index), editMap);

    private static void EditIndexAt(string path, Action<JsonObject> editMap)
    {
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        editMap(o["weight_map"]!.AsObject());
        File.WriteAllText(path, o.ToJsonString());
    }

    private static int DTypeSize(string dtype) => dtype switch
    {
        "BOOL" or "U8" or "I8" or "F8_E4M3" or "F8_E5M2" => 1,
        "I16" or "U16" or "F16" or "BF16" => 2,
        "I32" or "U32" or "F32" => 4,
        "I64" or "U64" or "F64" => 8,
        _ => throw new ArgumentException(dtype),
    };

    private static void WriteRaw(string path, string header, byte[] data) => WriteRawBytes(path, Encoding.UTF8.GetBytes(header), data);

    /// <summary>Writes a safetensors file: 8-byte little-endian header length, the header bytes, the data.</summary>
    internal static void WriteRawBytes(string path, byte[] header, ReadOnlySpan<byte> data)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.Write(data);
    }

    /// <summary>One tensor of an <see cref="StFile"/>: header fields kept as JSON text so they can be made invalid.</summary>
    internal sealed class StTensor(string name, string dtype, string shape, byte[] data)
    {
        public string Name { get; set; } = name;
        public string DType { get; set; } = dtype;
        /// <summary>The shape as JSON, e.g. "[64, 32]".</summary>
        public string Shape { get; set; } = shape;
        public byte[] Data { get; set; } = data;
        /// <summary>Offsets to write instead of the true ones, or null.</summary>
        public long[]? Offsets { get; set; }
    }

    /// <summary>
    /// A small safetensors reader and writer: <see cref="Read"/> splits a file into its tensors (in data order);
    /// <see cref="Write"/> lays their data out back to back and writes a header (built as text, so it may hold
    /// duplicate names, bad dtypes, shapes or offsets).
    /// </summary>
    internal sealed class StFile
    {
        public List<StTensor> Tensors { get; } = new();
        public string? Metadata { get; set; }
        public byte[] Trailing { get; set; } = [];

        public StTensor this[string name] => Tensors.Single(t => t.Name == name);

        public long DataLength => Tensors.Sum(t => (long)t.Data.Length);

        /// <summary>Where <paramref name="name"/>'s data starts and ends when written (before any offset override).</summary>
        public (long Begin, long End) OffsetsOf(string name)
        {
            long at = 0;
            foreach (var t in Tensors)
            {
                if (t.Name == name) return (at, at + t.Data.Length);
                at += t.Data.Length;
            }
            throw new ArgumentException(name);
        }

        public void Remove(string name) => Assert.Equal(1, Tensors.RemoveAll(t => t.Name == name));

        public static byte[] HeaderBytes(string path)
        {
            var bytes = File.ReadAllBytes(path);
            int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
            return bytes.AsSpan(8, n).ToArray();
        }

        public static StFile Read(string path)
        {
            var bytes = File.ReadAllBytes(path);
            int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
            var data = bytes.AsMemory(8 + n);
            var file = new StFile();
            var entries = new List<(long Begin, StTensor Tensor)>();
            using var doc = JsonDocument.Parse(bytes.AsMemory(8, n));
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") { file.Metadata = p.Value.GetRawText(); continue; }
                long begin = p.Value.GetProperty("data_offsets")[0].GetInt64(), end = p.Value.GetProperty("data_offsets")[1].GetInt64();
                var shape = "[" + string.Join(", ", p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())) + "]";
                entries.Add((begin, new StTensor(p.Name, p.Value.GetProperty("dtype").GetString()!, shape, data.Slice((int)begin, (int)(end - begin)).ToArray())));
            }
            file.Tensors.AddRange(entries.OrderBy(e => e.Begin).Select(e => e.Tensor));
            Assert.Equal(data.Length, file.DataLength);
            return file;
        }

        public void Write(string path)
        {
            var sb = new StringBuilder("{");
            if (Metadata is not null) sb.Append("\"__metadata__\": ").Append(Metadata);
            long at = 0;
            foreach (var t in Tensors)
            {
                long[] offsets = t.Offsets ?? [at, at + t.Data.Length];
                at += t.Data.Length;
                if (sb.Length > 1) sb.Append(", ");
                sb.Append(JsonSerializer.Serialize(t.Name)).Append(": {\"dtype\": ").Append(JsonSerializer.Serialize(t.DType))
                  .Append(", \"shape\": ").Append(t.Shape)
                  .Append(", \"data_offsets\": [").Append(offsets[0].ToString(CultureInfo.InvariantCulture)).Append(", ")
                  .Append(offsets[1].ToString(CultureInfo.InvariantCulture)).Append("]}");
            }
            sb.Append('}');
            // pad the header with spaces to a multiple of 8, as the reference writer does
            while ((Encoding.UTF8.GetByteCount(sb.ToString()) & 7) != 0) sb.Append(' ');
            var data = new byte[at + Trailing.Length];
            long pos = 0;
            foreach (var t in Tensors) { t.Data.CopyTo(data, pos); pos += t.Data.Length; }
            Trailing.CopyTo(data, pos);
            WriteRawBytes(path, Encoding.UTF8.GetBytes(sb.ToString()), data);
        }
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
    private static long MappedBytes(string path)
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
    private static long AnonymousBytes()
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
