using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Qwen2.Native.Tests.CheckpointEdits;

namespace Qwen2.Native.Tests;

/// <summary>
/// The unusable checkpoints <see cref="LoadingErrorTests.BrokenCheckpoint_ErrorNamesTheFault"/> runs, one test case
/// each, named by the test it came from (before the catalogue, each was a test or a row of a theory) and its row there.
/// </summary>
internal static class LoadingErrorCatalogue
{
    private const string Single = CheckpointFiles.SingleFile;
    private const string Index = CheckpointFiles.IndexFile;

    private static readonly Dictionary<string, LoadingErrorCase> Cases = Build().ToDictionary(c => c.Name, StringComparer.Ordinal);

    /// <summary>Every case as the test it came from and its row there (from 1), in catalogue order.</summary>
    public static IEnumerable<(string Test, int Row)> Keys =>
        Cases.Keys.Select(k => k.Split('#')).Select(p => (p[0], int.Parse(p[1], CultureInfo.InvariantCulture)));

    public static LoadingErrorCase Get(string test, int row) => Cases[$"{test}#{row}"];

    private static IEnumerable<LoadingErrorCase> Build() =>
        [.. MissingTensors(), .. ShapesAndDtypes(), .. HeaderLength(), .. DataOffsets(), .. JsonHeader(), .. ShardIndex(), .. CheckpointDirectory(), .. Config()];

    /// <summary>The name of row <paramref name="row"/> (from 0) of the theory <paramref name="test"/> this case replaced.</summary>
    private static string Name(string test, int row) => $"{test}#{row + 1}";

    // A case from a [Fact] is row 1 of its test.
    private static LoadingErrorCase Case(string name, string? fixture, Func<TempDir, ExpectedError> breakIt) =>
        new(name.Contains('#') ? name : name + "#1", fixture, breakIt);

    /// <summary>The config of tiny-f32 edited one way: the error names config.json.</summary>
    private static LoadingErrorCase ConfigCase(string name, Action<JsonObject> edit, string? field, params string[] words) =>
        Case(name, "tiny-f32", dir =>
        {
            EditConfig(dir, edit);
            return new ExpectedError(dir.File("config.json"), null, field, words);
        });

    /// <summary>A one-tensor safetensors file with this header, opened on its own.</summary>
    private static LoadingErrorCase OpenCase(string name, string header, string? tensor, string? field, params string[] words) =>
        Case(name, null, dir =>
        {
            string path = dir.File(Single);
            WriteRaw(path, header, new byte[16]);
            return new ExpectedError(path, tensor, field, words) { OpenFile = path };
        });

    /// <summary>tiny-f32 with its weight file's header replaced (16 bytes of data after it).</summary>
    private static LoadingErrorCase HeaderCase(string name, string header, string? field, params string[] words) =>
        Case(name, "tiny-f32", dir =>
        {
            WriteRaw(dir.File(Single), header, new byte[16]);
            return new ExpectedError(dir.File(Single), null, field, words);
        });

    /// <summary>tiny-f32 with its weight file rewritten after <paramref name="edit"/>.</summary>
    private static LoadingErrorCase WeightsCase(string name, Func<StFile, ExpectedErrorParts> edit) =>
        Case(name, "tiny-f32", dir =>
        {
            var st = StFile.Read(dir.File(Single));
            var (tensor, field, words) = edit(st);
            st.Write(dir.File(Single));
            return new ExpectedError(dir.File(Single), tensor, field, words);
        });

    /// <summary>The tensor, field and words of an error in a file the case picks.</summary>
    private sealed record ExpectedErrorParts(string? Tensor, string? Field, params string[] Words);

    // ---------------------------------------------------------------- missing tensors

    private static IEnumerable<LoadingErrorCase> MissingTensors()
    {
        string[] tensors = ["model.layers.1.mlp.up_proj.weight", "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias", "model.norm.weight"];
        foreach (var (tensor, i) in tensors.Select((t, i) => (t, i)))
            yield return WeightsCase(Name("MissingTensor_NamesFileAndTensor", i), st =>
            {
                st.Remove(tensor);
                return new(tensor, null, "is missing from the checkpoint");
            });

        yield return Case("MissingLmHead_WhenUntied_NamesLmHead", "untied-f16-mha", dir =>
        {
            var st = StFile.Read(dir.File(Single));
            st.Remove("lm_head.weight");
            st.Write(dir.File(Single));
            return new ExpectedError(dir.File(Single), "lm_head.weight", null, "is missing");
        });

        yield return Case("TiedCheckpoint_DeclaredUntied_NeedsLmHead", "tiny-f32", dir =>
        {
            // tiny-f32 has no lm_head.weight; tie_word_embeddings false must not fall back to the embedding.
            Assert.DoesNotContain("lm_head.weight", StFile.Read(dir.File(Single)).Tensors.Select(t => t.Name));
            EditConfig(dir, c => c["tie_word_embeddings"] = false);
            return new ExpectedError(dir.File(Single), "lm_head.weight", null, "is missing");
        });

        yield return Case("TieWordEmbeddingsAbsent_MeansUntied_NeedsLmHead", "tiny-f32", dir =>
        {
            EditConfig(dir, c => c.Remove("tie_word_embeddings"));
            return new ExpectedError(dir.File(Single), "lm_head.weight", null, "is missing");
        });

        yield return Case("MissingTensor_Sharded_NamesIndex", "sharded-bf16", dir =>
        {
            const string tensor = "model.layers.1.mlp.up_proj.weight";
            string shard = ShardOf(dir, tensor);
            var st = StFile.Read(dir.File(shard));
            st.Remove(tensor);
            st.Write(dir.File(shard));
            EditIndex(dir, map => map.Remove(tensor));
            return new ExpectedError(dir.File(Index), tensor, null, "is missing from the checkpoint");
        });
    }

    // ---------------------------------------------------------------- shapes and dtypes the model cannot use

    private static IEnumerable<LoadingErrorCase> ShapesAndDtypes()
    {
        (string Tensor, string Found, string Expected)[] shapes =
        [
            ("model.layers.0.self_attn.k_proj.weight", "[64, 32]", "[32, 64]"), // transposed, same byte count
            ("model.layers.1.mlp.down_proj.weight", "[176, 64]", "[64, 176]"),
            ("model.norm.weight", "[1, 64]", "[64]"),
            ("model.layers.0.self_attn.v_proj.bias", "[2, 16]", "[32]"),
        ];
        foreach (var ((tensor, found, expected), i) in shapes.Select((r, i) => (r, i)))
            yield return WeightsCase(Name("WrongShape_NamesExpectedAndFound", i), st =>
            {
                st[tensor].Shape = found;
                return new(tensor, "shape", $"has shape {found}, expected {expected}");
            });

        yield return Case("ConfigDisagreeingWithWeights_IsAShapeError", "tiny-f32", dir =>
        {
            EditConfig(dir, c => c["vocab_size"] = 513);
            return new ExpectedError(dir.File(Single), "model.embed_tokens.weight", "shape", "[512, 64]", "expected [513, 64]");
        });

        (string Tensor, string DType)[] dtypes =
        [
            ("model.norm.weight", "I64"),
            ("model.layers.0.self_attn.q_proj.weight", "F64"),
            ("model.layers.1.self_attn.k_proj.bias", "I32"),
            ("model.embed_tokens.weight", "U8"),
            ("model.layers.1.mlp.gate_proj.weight", "F8_E4M3"),
        ];
        foreach (var ((tensor, dtype), i) in dtypes.Select((r, i) => (r, i)))
            yield return WeightsCase(Name("UnsupportedDtype_UsedByModel_NamesDtype", i), st =>
            {
                var t = st[tensor];
                t.DType = dtype;
                t.Data = new byte[t.Data.Length / 4 * DTypeSize(dtype)];
                return new(tensor, "dtype", $"has dtype {dtype}", "F32, BF16 and F16");
            });

        string[] unknown = ["Q4", "f32", "FP32", ""];
        foreach (var (dtype, i) in unknown.Select((d, i) => (d, i)))
            yield return WeightsCase(Name("UnknownDtypeString_NamesTensorAndDtype", i), st =>
            {
                st["model.layers.0.mlp.down_proj.weight"].DType = dtype;
                return new("model.layers.0.mlp.down_proj.weight", "dtype", $"unknown dtype '{dtype}'");
            });
    }

    // ---------------------------------------------------------------- the 8-byte header length

    private static IEnumerable<LoadingErrorCase> HeaderLength()
    {
        foreach (var (length, i) in new[] { 0, 1, 7 }.Select((n, i) => (n, i)))
            yield return Case(Name("FileShorterThan8Bytes", i), "tiny-f32", dir =>
            {
                File.WriteAllBytes(dir.File(Single), new byte[length]);
                return new ExpectedError(dir.File(Single), null, "header length", $"file is {length} bytes", "too short");
            });

        yield return Case("HeaderLengthPastEndOfFile", "tiny-f32", dir =>
        {
            string path = dir.File(Single);
            var bytes = File.ReadAllBytes(path);
            // keep the original length prefix but cut the file inside the header
            File.WriteAllBytes(path, bytes.AsSpan(0, 100).ToArray());
            ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
            return new ExpectedError(path, null, "header length", $"header length {declared} runs past the end of the file (100 bytes)");
        });
    }

    // ---------------------------------------------------------------- data offsets

    private static IEnumerable<LoadingErrorCase> DataOffsets()
    {
        yield return WeightsCase("DataOffsets_OutsideTheDataSection", st =>
        {
            long dataLength = st.DataLength;
            var t = st["model.layers.0.input_layernorm.weight"]; // 256 bytes
            t.Offsets = [dataLength - 128, dataLength + 128];
            return new(t.Name, "data_offsets", $"data_offsets [{dataLength - 128}, {dataLength + 128}] lie outside the {dataLength}-byte data section");
        });

        yield return Case("DataOffsets_TruncatedFile_LastTensorOutside", "tiny-f32", dir =>
        {
            string path = dir.File(Single);
            var st = StFile.Read(path);
            var last = st.Tensors[^1];
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length - 10).ToArray());
            return new ExpectedError(path, last.Name, "data_offsets", "lie outside", $"{st.DataLength - 10}-byte data section");
        });

        yield return WeightsCase("DataOffsets_Overlap", st =>
        {
            var (begin, end) = st.OffsetsOf("model.layers.0.mlp.down_proj.weight");
            var (prevBegin, prevEnd) = st.OffsetsOf("model.layers.0.input_layernorm.weight");
            Assert.Equal(begin, prevEnd); // stored in this order in the fixture
            st["model.layers.0.mlp.down_proj.weight"].Offsets = [begin - 4, end - 4];
            return new("model.layers.0.mlp.down_proj.weight", "data_offsets",
                $"bytes [{begin - 4}, {end - 4}) overlap tensor 'model.layers.0.input_layernorm.weight' at [{prevBegin}, {prevEnd})");
        });

        yield return WeightsCase("DataOffsets_Gap", st =>
        {
            var t = st["model.layers.0.input_layernorm.weight"];
            var (begin, end) = st.OffsetsOf(t.Name);
            t.Offsets = [begin + 4, end + 4];
            return new(t.Name, "data_offsets", $"starts at byte {begin + 4}, leaving a gap after byte {begin}");
        });

        yield return WeightsCase("DataOffsets_TrailingBytesNoTensorCovers", st =>
        {
            long covered = st.DataLength;
            st.Trailing = new byte[16];
            return new(null, "data_offsets", $"cover {covered} bytes of data but the data section holds {covered + 16}");
        });

        yield return WeightsCase("DataOffsets_EndBeforeBegin", st =>
        {
            var t = st["model.layers.1.input_layernorm.weight"];
            var (begin, end) = st.OffsetsOf(t.Name);
            t.Offsets = [end, begin];
            return new(t.Name, "data_offsets", $"data_offsets [{end}, {begin}] end before they begin");
        });

        (string Tensor, string DType, string Shape, long Needed)[] counts =
        [
            ("model.norm.weight", "F32", "[63]", 252),
            ("model.norm.weight", "F32", "[65]", 260),
            ("model.norm.weight", "BF16", "[64]", 128),
            ("model.layers.0.self_attn.q_proj.weight", "F32", "[64, 63]", 16128),
            ("model.layers.0.self_attn.q_proj.weight", "F32", "[]", 4),
            ("model.layers.0.self_attn.q_proj.weight", "F32", "[64, 0]", 0),
        ];
        foreach (var ((tensor, dtype, shape, needed), i) in counts.Select((r, i) => (r, i)))
            yield return WeightsCase(Name("ByteCount_DisagreesWithShapeTimesDtype", i), st =>
            {
                var t = st[tensor];
                var (begin, end) = st.OffsetsOf(tensor);
                t.DType = dtype;
                t.Shape = shape;
                return new(tensor, "data_offsets", $"shape {shape} of {dtype} needs {needed} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
            });

        (string Shape, string Words)[] dims =
        [
            ("[-1, 64]", "dimensions must be non-negative integers"),
            ("[64, -4096]", "dimensions must be non-negative integers"),
            ("[64.5]", "dimensions must be non-negative integers"),
            ("[\"64\"]", "dimensions must be non-negative integers"),
            ("[null]", "dimensions must be non-negative integers"),
            ("[99999999999999999999]", "dimensions must be non-negative integers"),
            ("[4294967296, 4294967296]", "too many elements to address"),
            ("[9223372036854775807]", "too many elements to address"),
            ("[3037000500, 3037000500]", "too many elements to address"), // product just over 2^63
            ("[2305843009213693952]", "too many elements to address"), // 2^61 elements x 4 bytes = 2^63
        ];
        foreach (var ((shape, words), i) in dims.Select((r, i) => (r, i)))
            yield return WeightsCase(Name("BadDims_NamesTensorAndShape", i), st =>
            {
                st["model.layers.1.mlp.gate_proj.weight"].Shape = shape;
                return new("model.layers.1.mlp.gate_proj.weight", "shape", $"has shape {shape}", words);
            });

        (string Offsets, string Words)[] offsets =
        [
            ("[-8, 0]", "data offset -8 is not a non-negative integer"),
            ("[0, 1.5]", "data offset 1.5 is not a non-negative integer"),
            ("[\"0\", 16]", "data offset \"0\" is not a non-negative integer"),
            ("[0]", "has no 'data_offsets' pair"),
            ("[0, 16, 32]", "has no 'data_offsets' pair"),
            ("{\"begin\": 0}", "has no 'data_offsets' pair"),
        ];
        foreach (var ((o, words), i) in offsets.Select((r, i) => (r, i)))
            yield return OpenCase(Name("MalformedDataOffsets", i),
                $"{{\"t\": {{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": {o}}}}}", "t", "data_offsets", words);
    }

    // ---------------------------------------------------------------- the JSON header

    private static IEnumerable<LoadingErrorCase> JsonHeader()
    {
        string[] malformed =
        [
            "",
            "{",
            "{\"t\": ",
            "{\"t\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16],}}",
            "{\"t\": {\"dtype\": \"F32\"} // comment\n}",
            "{\"t\": {}} trailing",
            "{'t': {}}",
        ];
        foreach (var (header, i) in malformed.Select((h, i) => (h, i)))
            yield return Case(Name("MalformedJsonHeader", i), "tiny-f32", dir =>
            {
                WriteRaw(dir.File(Single), header, new byte[16]);
                return new ExpectedError(dir.File(Single), null, "header", "malformed JSON header") { Inner = typeof(JsonException) };
            });

        yield return Case("InvalidUtf8InHeader_IsMalformed", null, dir =>
        {
            string path = dir.File(Single);
            var header = Encoding.ASCII.GetBytes("{\"tXX\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]}}");
            header[3] = 0xFF; // bytes that are not UTF-8 inside the tensor name
            header[4] = 0xFE;
            WriteRawBytes(path, header, []);
            return new ExpectedError(path, null, "header", "not valid UTF-8") { OpenFile = path };
        });

        // valid UTF-8 and valid JSON, but "\ud800" is no UTF-16 string: System.Text.Json throws InvalidOperationException reading it
        string[] surrogates =
        [
            "{\"t\\ud800\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
            "{\"t\": {\"dtype\": \"F3\\udc00\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
            "{\"__metadata__\": {}, \"t\\udfff\\ud800\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
        ];
        foreach (var (header, i) in surrogates.Select((h, i) => (h, i)))
            yield return HeaderCase(Name("LoneSurrogateEscapeInHeader_IsACheckpointError", i), header, "header", "invalid string");

        string[] notObjects = ["[]", "[{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}]", "42", "\"model.embed_tokens.weight\"", "null"];
        foreach (var (header, i) in notObjects.Select((h, i) => (h, i)))
            yield return HeaderCase(Name("HeaderNotAnObject", i), header, "header", "the header must be a JSON object");

        (string Entry, string? Field, string Words)[] entries =
        [
            ("5", null, "header entry is not an object"),
            ("[\"F32\", [4], [0, 16]]", null, "header entry is not an object"),
            ("{\"shape\": [4], \"data_offsets\": [0, 16]}", "dtype", "has no string 'dtype'"),
            ("{\"dtype\": 4, \"shape\": [4], \"data_offsets\": [0, 16]}", "dtype", "has no string 'dtype'"),
            ("{\"dtype\": \"F32\", \"data_offsets\": [0, 16]}", "shape", "has no 'shape' array"),
            ("{\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 16]}", "shape", "has no 'shape' array"),
            ("{\"dtype\": \"F32\", \"shape\": [4]}", "data_offsets", "has no 'data_offsets' pair"),
        ];
        foreach (var ((entry, field, words), i) in entries.Select((r, i) => (r, i)))
            yield return OpenCase(Name("MalformedHeaderEntry", i), $"{{\"t\": {entry}}}", "t", field, words);

        yield return Case("DuplicateTensorNames_AreRejected", "tiny-f32", dir =>
        {
            var st = StFile.Read(dir.File(Single));
            var t = st["model.layers.0.self_attn.k_proj.bias"];
            // a second entry of the same name with its own, different bytes: which one would the model get?
            st.Tensors.Add(new StTensor(t.Name, t.DType, t.Shape, new byte[t.Data.Length]));
            st.Write(dir.File(Single));
            // System.Text.Json itself accepts the duplicate... (the loader does not)
            using (var doc = JsonDocument.Parse(StFile.HeaderBytes(dir.File(Single))))
                Assert.Equal(2, doc.RootElement.EnumerateObject().Count(p => p.Name == t.Name));
            return new ExpectedError(dir.File(Single), t.Name, null, "is listed twice in the header");
        });

        // The reference implementation reads __metadata__ as a map of strings; this loader used to skip whatever it held.
        (string Metadata, string Words)[] metadata =
        [
            ("5", "is Number"),
            ("[\"pt\"]", "is Array"),
            ("\"pt\"", "is String"),
            ("{\"format\": 1}", "key 'format' is Number"),
            ("{\"format\": \"pt\", \"nested\": {\"a\": \"b\"}}", "key 'nested' is Object"),
            ("{\"format\": null}", "key 'format' is Null"),
        ];
        foreach (var ((m, words), i) in metadata.Select((r, i) => (r, i)))
            yield return WeightsCase(Name("MetadataOfWrongType_IsRejected", i), st =>
            {
                st.Metadata = m;
                return new(null, "__metadata__", words);
            });
    }

    // ---------------------------------------------------------------- sharded checkpoints

    private static LoadingErrorCase IndexTextCase(string name, string text, string? field, params string[] words) =>
        Case(name, "sharded-bf16", dir =>
        {
            File.WriteAllText(dir.File(Index), text);
            return new ExpectedError(dir.File(Index), null, field, words);
        });

    private static IEnumerable<LoadingErrorCase> ShardIndex()
    {
        string[] malformed =
        [
            "",
            "{\"weight_map\": {",
            "{\"weight_map\": {\"model.embed_tokens.weight\": model-00001-of-00008.safetensors}}",
            "{\"weight_map\": {}},",
        ];
        foreach (var (text, i) in malformed.Select((t, i) => (t, i)))
            yield return IndexTextCase(Name("ShardIndex_Malformed", i), text, null, "malformed JSON");

        string[] noMap =
        [
            "{\"metadata\": {\"total_size\": 409216}}",
            "{\"weight_map\": [\"model-00001-of-00008.safetensors\"]}",
            "{\"weight_map\": null}",
            "[{\"weight_map\": {}}]",
        ];
        foreach (var (text, i) in noMap.Select((t, i) => (t, i)))
            yield return IndexTextCase(Name("ShardIndex_WithoutWeightMap", i), text, "weight_map", "has no 'weight_map' object");

        yield return Case("ShardIndex_NamesAMissingShardFile", "sharded-bf16", dir =>
        {
            const string shard = "model-00005-of-00008.safetensors";
            File.Delete(dir.File(shard));
            string firstTensor = IndexMap(dir).First(p => p.Value == shard).Key;
            return new ExpectedError(dir.File(Index), firstTensor, "weight_map", $"names shard '{shard}', which is not in");
        });

        yield return Case("ShardIndex_NamesATensorTheShardDoesNotHold", "sharded-bf16", dir =>
        {
            const string tensor = "model.layers.0.mlp.gate_proj.weight";
            string wrong = IndexMap(dir).Values.Distinct().First(s => s != ShardOf(dir, tensor));
            EditIndex(dir, map => map[tensor] = wrong);
            return new ExpectedError(dir.File(wrong), tensor, null, $"is mapped to this shard by {Index} but the shard does not hold it");
        });

        yield return Case("ShardIndex_NonStringFileName", "sharded-bf16", dir =>
        {
            EditIndex(dir, map => map["model.embed_tokens.weight"] = 1);
            return new ExpectedError(dir.File(Index), "model.embed_tokens.weight", "weight_map", "maps to a non-string file name");
        });

        string[] surrogates =
        [
            "{\"weight_map\": {\"model.embed_tokens.weight\\ud800\": \"model-00001-of-00008.safetensors\"}}",
            "{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00008\\udc00.safetensors\"}}",
        ];
        foreach (var (text, i) in surrogates.Select((t, i) => (t, i)))
            yield return IndexTextCase(Name("ShardIndex_LoneSurrogateEscape", i), text, "weight_map", "invalid string");

        string[] traversals =
        [
            "../model-00001-of-00008.safetensors",
            "..\\model-00001-of-00008.safetensors",
            "./../model-00001-of-00008.safetensors",
            "sub/../../model-00001-of-00008.safetensors",
            "ABSOLUTE",
            "",
        ];
        foreach (var (traversal, i) in traversals.Select((t, i) => (t, i)))
            yield return Case(Name("ShardIndex_PathTraversal_IsRejected", i), null, outer =>
            {
                // A valid shard holding the tensor sits right where the traversal points, so following it would "work".
                string shard = traversal;
                string ckpt = Path.Combine(outer.Path, "ckpt");
                CopyDirectory(Fixtures.Model("sharded-bf16"), ckpt);
                File.Copy(Path.Combine(ckpt, "model-00001-of-00008.safetensors"), outer.File("model-00001-of-00008.safetensors"));
                Directory.CreateDirectory(Path.Combine(ckpt, "sub"));
                if (shard == "ABSOLUTE") shard = outer.File("model-00001-of-00008.safetensors");
                string index = Path.Combine(ckpt, Index);
                EditIndexAt(index, map => map["model.embed_tokens.weight"] = shard);
                return new ExpectedError(index, "model.embed_tokens.weight", "weight_map", $"names shard \"{shard}\"", "not a file name in the checkpoint directory")
                {
                    Directory = ckpt,
                };
            });

        yield return Case("ShardedTensorWithWrongShape_NamesItsShard", "sharded-bf16", dir =>
        {
            const string tensor = "model.layers.2.self_attn.o_proj.weight";
            string shard = ShardOf(dir, tensor);
            var st = StFile.Read(dir.File(shard));
            st[tensor].Shape = "[32, 128]";
            st.Write(dir.File(shard));
            return new ExpectedError(dir.File(shard), tensor, "shape", "has shape [32, 128], expected [64, 64]");
        });
    }

    // ---------------------------------------------------------------- the checkpoint directory

    private static IEnumerable<LoadingErrorCase> CheckpointDirectory()
    {
        yield return Case("DirectoryMissing", null, dir =>
        {
            string missing = dir.File("no-such-checkpoint");
            return new ExpectedError(missing, null, null, "checkpoint directory not found") { Directory = missing };
        });

        yield return Case("NoWeightFiles", "tiny-f32", dir =>
        {
            File.Delete(dir.File(Single));
            return new ExpectedError(dir.Path, null, null, $"no {Single} and no {Index}");
        });

        yield return Case("ConfigMissing", "tiny-f32", dir =>
        {
            File.Delete(dir.File("config.json"));
            return new ExpectedError(dir.File("config.json"), null, null, "file not found");
        });

        foreach (var (text, i) in new[] { "", "{\"model_type\": \"qwen2\", ", "{\"model_type\": qwen2}", "{\"hidden_size\": 64} {}" }.Select((t, i) => (t, i)))
            yield return ConfigTextCase(Name("ConfigMalformed", i), text, "malformed JSON");

        foreach (var (text, i) in new[] { "[]", "\"qwen2\"" }.Select((t, i) => (t, i)))
            yield return ConfigTextCase(Name("ConfigNotAnObject", i), text, "must be a JSON object");
    }

    private static LoadingErrorCase ConfigTextCase(string name, string text, params string[] words) =>
        Case(name, "tiny-f32", dir =>
        {
            File.WriteAllText(dir.File("config.json"), text);
            return new ExpectedError(dir.File("config.json"), null, null, words);
        });

    // ---------------------------------------------------------------- config.json's values

    private static IEnumerable<LoadingErrorCase> Config()
    {
        foreach (var (modelType, i) in new[] { "llama", "qwen3_moe", "Qwen2" }.Select((t, i) => (t, i)))
            yield return ConfigCase(Name("ConfigOtherModelType", i), c => c["model_type"] = modelType, "model_type", $"is \"{modelType}\"", "model_type \"qwen2\"");

        yield return ConfigCase("ConfigWithoutModelType", c => c.Remove("model_type"), "model_type", "missing");
        yield return ConfigCase("ConfigHeadsNotDivisibleByKvHeads", c => c["num_key_value_heads"] = 3, "num_key_value_heads", "3 does not divide num_attention_heads (4)");

        (string Field, int Value)[] sizes =
        [
            ("hidden_size", 0), ("hidden_size", -64), ("num_hidden_layers", -1), ("num_hidden_layers", 0),
            ("num_attention_heads", 0), ("num_key_value_heads", 0), ("num_key_value_heads", -2), ("intermediate_size", 0),
            ("vocab_size", -512), ("max_position_embeddings", 0), ("head_dim", 0), ("head_dim", -16),
        ];
        foreach (var ((field, value), i) in sizes.Select((r, i) => (r, i)))
            yield return ConfigCase(Name("ConfigNonPositiveSize", i), c => c[field] = value, field, $"is {value}; it must be positive");

        (string Field, string Json, string Expected)[] types =
        [
            ("hidden_size", "\"64\"", "an integer"),
            ("num_hidden_layers", "2.5", "an integer"),
            ("vocab_size", "[512]", "an integer"),
            ("num_attention_heads", "true", "an integer"),
            ("intermediate_size", "1e20", "an integer"),
            ("rope_theta", "\"1e6\"", "a number"),
            ("rms_norm_eps", "{}", "a number"),
            ("tie_word_embeddings", "\"true\"", "true or false"),
            ("tie_word_embeddings", "1", "true or false"),
            ("model_type", "2", "a string"),
            ("layer_types", "\"full_attention\"", "an array of strings"),
            ("layer_types", "[1, 2]", "an array of strings"),
            ("eos_token_id", "\"511\"", "an integer or an array of integers"),
            ("eos_token_id", "[511, \"x\"]", "an integer or an array of integers"),
            ("bos_token_id", "[510]", "an integer"),
        ];
        foreach (var ((field, json, expected), i) in types.Select((r, i) => (r, i)))
            yield return ConfigCase(Name("ConfigWrongJsonType", i), c => c[field] = JsonNode.Parse(json), field,
                $"is {JsonNode.Parse(json)!.ToJsonString()}; expected {expected}");

        (string Field, string Json, string Type)[] ropes =
        [
            ("rope_scaling", "{\"type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}", "yarn"),
            ("rope_scaling", "{\"rope_type\": \"dynamic\", \"factor\": 2.0}", "dynamic"),
            ("rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0}", "linear"),
            ("rope_parameters", "{\"rope_type\": \"yarn\", \"rope_theta\": 1000000.0, \"factor\": 4.0}", "yarn"),
        ];
        foreach (var ((field, json, type), i) in ropes.Select((r, i) => (r, i)))
            yield return ConfigCase(Name("ConfigUnsupportedRopeScaling", i), c => c[field] = JsonNode.Parse(json), field, $"rope type \"{type}\" is not supported");

        (string LayerTypes, string Words)[] layers =
        [
            ("[\"full_attention\"]", "lists 1 layers, num_hidden_layers is 2"),
            ("[\"full_attention\", \"full_attention\", \"full_attention\"]", "lists 3 layers, num_hidden_layers is 2"),
            ("[]", "lists 0 layers, num_hidden_layers is 2"),
            ("[\"full_attention\", \"linear_attention\"]", "has \"linear_attention\""),
        ];
        foreach (var ((layerTypes, words), i) in layers.Select((r, i) => (r, i)))
            yield return ConfigCase(Name("ConfigLayerTypesMismatch", i), c => c["layer_types"] = JsonNode.Parse(layerTypes), "layer_types", words);

        foreach (var (headDim, i) in new[] { 33, 15, 1 }.Select((d, i) => (d, i)))
            yield return ConfigCase(Name("ConfigOddHeadDim", i), c => c["head_dim"] = headDim, "head_dim", $"is {headDim}; RoPE needs an even head dimension");

        // 68 / 4 = 17
        yield return ConfigCase("ConfigOddDerivedHeadDim", c => c["hidden_size"] = 68, "head_dim", "is 17; RoPE needs an even head dimension");
        yield return ConfigCase("ConfigHiddenNotAMultipleOfHeads_WithoutHeadDim", c => c["hidden_size"] = 66, "head_dim", "hidden_size 66 is not a multiple of num_attention_heads 4");

        (string Field, string Json, string Words)[] others =
        [
            ("hidden_act", "\"gelu\"", "is \"gelu\""),
            ("rms_norm_eps", "0", "is 0; it must be positive"),
            ("rms_norm_eps", "-1e-6", "it must be positive"),
            ("rope_theta", "0", "is 0; it must be positive"),
            ("rope_theta", "-10000", "it must be positive"),
            ("rope_theta", "1e400", "it must be positive"),
        ];
        foreach (var ((field, json, words), i) in others.Select((r, i) => (r, i)))
            yield return ConfigCase(Name("ConfigOtherInvalidValues", i), c => c[field] = JsonNode.Parse(json), field, words);

        (string Field, string Json)[] surrogates =
        [
            ("model_type", "\"qwen2\\ud800\""),
            ("hidden_act", "\"\\udc00\""),
            ("torch_dtype", "\"bfloat16\\ud800\""),
            ("layer_types", "[\"full_attention\", \"\\ud800\"]"),
        ];
        foreach (var ((field, json), i) in surrogates.Select((r, i) => (r, i)))
            yield return Case(Name("ConfigLoneSurrogateEscape", i), "tiny-f32", dir =>
            {
                // JsonNode cannot hold such a string, so a placeholder is replaced in the text
                EditConfig(dir, c => c[field] = "@@placeholder@@");
                string path = dir.File("config.json");
                File.WriteAllText(path, File.ReadAllText(path).Replace("\"@@placeholder@@\"", json, StringComparison.Ordinal));
                return new ExpectedError(dir.File("config.json"), null, field, "not a valid string");
            });

        yield return Case("ConfigErrors_AreReportedBeforeTheWeightsAreOpened", "tiny-f32", dir =>
        {
            // broken config and broken weights: the config is read first and is what the message names
            File.WriteAllBytes(dir.File(Single), [1, 2, 3]);
            EditConfig(dir, c => c["model_type"] = "llama");
            return new ExpectedError(dir.File("config.json"), null, "model_type", "\"llama\"");
        });
    }
}
