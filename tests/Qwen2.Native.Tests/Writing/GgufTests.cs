using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Qwen2.Kernels;
using Qwen2.Native.Gguf;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

public class GgufTests
{
    private static readonly SyntheticShape Untied = SyntheticShape.Tiny with { Name = "tiny-untied", TieWordEmbeddings = false };

    [Theory]
    [InlineData(WeightType.BF16, GgufFileType.F16, true)]
    [InlineData(WeightType.BF16, GgufFileType.F32, true)]
    [InlineData(WeightType.F32, GgufFileType.F16, false)]
    [InlineData(WeightType.F16, GgufFileType.F32, false)]
    [InlineData(WeightType.F16, GgufFileType.F16, true)]
    public void Export_writes_what_llama_cpp_reads(WeightType source, GgufFileType type, bool tied)
    {
        using var dir = Fixtures.TempDir();
        var shape = tied ? SyntheticShape.Tiny : Untied;
        SyntheticCheckpoint.Write(dir.Path, shape, source, seed: 5);
        TinyChatModel.CopyTokenizer(dir.Path);
        string path = dir.File("model.gguf");
        var result = GgufExporter.Export(dir.Path, path, type);
        var g = GgufFile.Read(path);

        Assert.Equal(3u, g.Version);
        Assert.Equal(new FileInfo(path).Length, result.FileBytes);
        Assert.Equal(g.Tensors.Count, result.TensorCount);
        Assert.Equal((GgufMetadataType.String, (object)"qwen2"), g.Kv["general.architecture"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)type), g.Kv["general.file_type"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)32u), g.Kv["general.alignment"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)shape.NumHiddenLayers), g.Kv["qwen2.block_count"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)shape.HiddenSize), g.Kv["qwen2.embedding_length"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)shape.IntermediateSize), g.Kv["qwen2.feed_forward_length"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)shape.NumAttentionHeads), g.Kv["qwen2.attention.head_count"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)shape.NumKeyValueHeads), g.Kv["qwen2.attention.head_count_kv"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)shape.MaxPositionEmbeddings), g.Kv["qwen2.context_length"]);
        Assert.Equal((GgufMetadataType.Float32, (object)1e6f), g.Kv["qwen2.rope.freq_base"]);
        Assert.Equal((GgufMetadataType.Float32, (object)1e-6f), g.Kv["qwen2.attention.layer_norm_rms_epsilon"]);

        // Tokenizer: every row of the embedding has a token; unused ids are padded as llama.cpp's converter pads them.
        var tokenizer = Qwen2Tokenizer.Load(dir.Path);
        Assert.Equal((GgufMetadataType.String, (object)"gpt2"), g.Kv["tokenizer.ggml.model"]);
        Assert.Equal((GgufMetadataType.String, (object)"qwen2"), g.Kv["tokenizer.ggml.pre"]);
        var tokens = (string[])g.Kv["tokenizer.ggml.tokens"].Value;
        var types = (int[])g.Kv["tokenizer.ggml.token_type"].Value;
        Assert.Equal(shape.VocabSize, tokens.Length);
        Assert.Equal(shape.VocabSize, types.Length);
        for (int id = 0; id < tokenizer.VocabSize; id++) Assert.Equal(tokenizer.IdToToken(id), tokens[id]);
        Assert.Equal(("!", 1), (tokens[0], types[0]));
        Assert.Equal(("<|endoftext|>", 3), (tokens[151643], types[151643]));
        Assert.Equal(("<|im_end|>", 3), (tokens[151645], types[151645]));
        Assert.Equal(("<tool_call>", 4), (tokens[151657], types[151657])); // added, not special: user-defined
        Assert.Equal(("[PAD151665]", 5), (tokens[151665], types[151665]));
        Assert.Equal(($"[PAD{shape.VocabSize - 1}]", 5), (tokens[^1], types[^1]));
        var merges = (string[])g.Kv["tokenizer.ggml.merges"].Value;
        Assert.Equal(151387, merges.Length);
        Assert.Equal("Ġ Ġ", merges[0]);
        Assert.Equal((GgufMetadataType.UInt32, (object)151643u), g.Kv["tokenizer.ggml.bos_token_id"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)151645u), g.Kv["tokenizer.ggml.eos_token_id"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)151643u), g.Kv["tokenizer.ggml.padding_token_id"]);
        Assert.Equal((GgufMetadataType.Bool, (object)false), g.Kv["tokenizer.ggml.add_bos_token"]);
        Assert.StartsWith("{%", (string)g.Kv["tokenizer.chat_template"].Value);

        // Tensors: llama.cpp's names, dims innermost first, 1-D always F32, offsets aligned.
        int expectedCount = 1 + 12 * shape.NumHiddenLayers + 1 + (tied ? 0 : 1);
        Assert.Equal(expectedCount, g.Tensors.Count);
        Assert.Equal(0, g.DataStart % 32);
        Assert.Equal(tied, !g.Tensors.ContainsKey("output.weight"));
        var embd = g.Tensors["token_embd.weight"];
        Assert.Equal(new ulong[] { (ulong)shape.HiddenSize, (ulong)shape.VocabSize }, embd.Dims);
        Assert.Equal(new ulong[] { (ulong)shape.HiddenSize }, g.Tensors["blk.1.attn_norm.weight"].Dims);
        Assert.Equal(new ulong[] { (ulong)shape.IntermediateSize, (ulong)shape.HiddenSize }, g.Tensors["blk.0.ffn_down.weight"].Dims);

        using var files = new CheckpointFiles(dir.Path);
        foreach (var (hf, gguf) in NameMap(shape))
        {
            var t = g.Tensors[gguf];
            Assert.True(files.TryGet(hf, out var file, out var info), hf);
            Assert.Equal(info.Shape.Reverse().Select(d => (ulong)d), t.Dims);
            var expectedType = info.Shape.Length == 2 && type == GgufFileType.F16 ? GgmlType.F16 : GgmlType.F32;
            Assert.Equal(expectedType, t.Type);
            Assert.Equal(0ul, t.Offset % 32);
            int n = (int)info.Shape.Aggregate(1L, (a, d) => a * d);
            var src = new float[n];
            unsafe { WeightTypes.ToSingle(file.WeightTypeOf(info), new ReadOnlySpan<byte>(file.Pointer(info), (int)(info.End - info.Begin)), src); }
            var data = g.Data(gguf);
            if (expectedType == GgmlType.F32)
                Assert.True(MemoryMarshal.Cast<byte, float>(data).SequenceEqual(src), gguf);
            else
            {
                var halves = MemoryMarshal.Cast<byte, Half>(data);
                Assert.Equal(n, halves.Length);
                for (int i = 0; i < n; i++)
                    if (halves[i] != (Half)src[i]) Assert.Fail($"{gguf}[{i}] is {halves[i]}, expected {(Half)src[i]} from {src[i]}");
            }
        }
    }

    private static IEnumerable<(string Hf, string Gguf)> NameMap(SyntheticShape s)
    {
        yield return ("model.embed_tokens.weight", "token_embd.weight");
        for (int i = 0; i < s.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.", b = $"blk.{i}.";
            yield return (p + "input_layernorm.weight", b + "attn_norm.weight");
            yield return (p + "self_attn.q_proj.weight", b + "attn_q.weight");
            yield return (p + "self_attn.q_proj.bias", b + "attn_q.bias");
            yield return (p + "self_attn.k_proj.weight", b + "attn_k.weight");
            yield return (p + "self_attn.k_proj.bias", b + "attn_k.bias");
            yield return (p + "self_attn.v_proj.weight", b + "attn_v.weight");
            yield return (p + "self_attn.v_proj.bias", b + "attn_v.bias");
            yield return (p + "self_attn.o_proj.weight", b + "attn_output.weight");
            yield return (p + "post_attention_layernorm.weight", b + "ffn_norm.weight");
            yield return (p + "mlp.gate_proj.weight", b + "ffn_gate.weight");
            yield return (p + "mlp.up_proj.weight", b + "ffn_up.weight");
            yield return (p + "mlp.down_proj.weight", b + "ffn_down.weight");
        }
        yield return ("model.norm.weight", "output_norm.weight");
        if (!s.TieWordEmbeddings) yield return ("lm_head.weight", "output.weight");
    }

    [Fact]
    public void Narrowing_to_f16_rounds_as_numpy()
    {
        // BF16 values outside F16's range: overflow to infinity, underflow through subnormals to zero, ties to even.
        float[] values = [70000f, -1e6f, 65520f, 65519f, 1e-5f, 1e-8f, 3e-8f, 1f + 1f / 2048, 1f + 3f / 2048];
        var halves = new Half[values.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(values, halves);
        Assert.Equal(Half.PositiveInfinity, halves[0]);
        Assert.Equal(Half.NegativeInfinity, halves[1]);
        Assert.Equal(Half.PositiveInfinity, halves[2]); // 65520 is the tie between 65504 and 2^16: rounds to infinity
        Assert.Equal((Half)65504f, halves[3]);
        Assert.True(Half.IsSubnormal(halves[4]));
        Assert.Equal((Half)0f, halves[5]);
        Assert.Equal(BitConverter.UInt16BitsToHalf(1), halves[6]); // 3e-8 is nearer 2^-24 than 0
        Assert.Equal((Half)1f, halves[7]); // tie: to even
        Assert.Equal((Half)(1f + 4f / 2048), halves[8]); // tie: to even
    }

    [Fact]
    public void Missing_tokenizer_is_named()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16);
        var e = Assert.Throws<CheckpointException>(() => GgufExporter.Export(dir.Path, dir.File("x.gguf"), GgufFileType.F16));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.False(File.Exists(dir.File("x.gguf")));
        Assert.False(File.Exists(dir.File("x.gguf.partial")));
    }

    [Fact]
    public void Missing_tensor_is_named_and_nothing_is_left_behind()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, Untied, WeightType.BF16);
        TinyChatModel.CopyTokenizer(dir.Path);
        // A config that claims a third layer: its tensors are missing.
        string config = dir.File("config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
        var e = Assert.Throws<CheckpointException>(() => GgufExporter.Export(dir.Path, dir.File("x.gguf"), GgufFileType.F32));
        Assert.Equal("model.layers.2.input_layernorm.weight", e.TensorName);
        Assert.False(File.Exists(dir.File("x.gguf")));
    }

    [Fact]
    public void Bad_type_is_refused()
    {
        using var dir = Fixtures.TempDir();
        Assert.Throws<ArgumentOutOfRangeException>(() => GgufExporter.Export(dir.Path, dir.File("x.gguf"), (GgufFileType)99));
    }

    /// <summary>A minimal GGUF v3 reader, written from the format description, independent of the writer.</summary>
    internal sealed class GgufFile
    {
        public required uint Version { get; init; }
        public required Dictionary<string, (GgufMetadataType Type, object Value)> Kv { get; init; }
        public required Dictionary<string, (ulong[] Dims, GgmlType Type, ulong Offset)> Tensors { get; init; }
        public required long DataStart { get; init; }
        public required byte[] Bytes { get; init; }

        public ReadOnlySpan<byte> Data(string name)
        {
            var t = Tensors[name];
            return Bytes.AsSpan((int)(DataStart + (long)t.Offset), (int)ByteCount(t.Dims, t.Type));
        }

        /// <summary>Bytes of a tensor: ggml's block sizes (32 elements in 34, 18, 20, 22, 24 bytes; 256 in 144, 176, 210).</summary>
        private static long ByteCount(ulong[] dims, GgmlType type)
        {
            long count = dims.Aggregate(1L, (a, d) => a * (long)d);
            var (size, bytes) = type switch
            {
                GgmlType.F32 => (1, 4), GgmlType.F16 => (1, 2),
                GgmlType.Q8_0 => (32, 34), GgmlType.Q4_0 => (32, 18), GgmlType.Q4_1 => (32, 20),
                GgmlType.Q5_0 => (32, 22), GgmlType.Q5_1 => (32, 24),
                GgmlType.Q4_K => (256, 144), GgmlType.Q5_K => (256, 176), GgmlType.Q6_K => (256, 210),
                _ => throw new InvalidDataException($"tensor type {type} not expected"),
            };
            Assert.True(dims[0] % (ulong)size == 0, $"rows of {dims[0]} are not whole {type} blocks");
            return count / size * bytes;
        }

        public static GgufFile Read(string path)
        {
            byte[] b = File.ReadAllBytes(path);
            int pos = 0;
            uint U32() { uint v = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(pos)); pos += 4; return v; }
            ulong U64() { ulong v = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(pos)); pos += 8; return v; }
            string Str() { int n = checked((int)U64()); string s = Encoding.UTF8.GetString(b, pos, n); pos += n; return s; }
            object Value(GgufMetadataType t) => t switch
            {
                GgufMetadataType.UInt32 => U32(),
                GgufMetadataType.Int32 => (int)U32(),
                GgufMetadataType.Float32 => BitConverter.UInt32BitsToSingle(U32()),
                GgufMetadataType.Bool => b[pos++] switch { 0 => false, 1 => true, var x => throw new InvalidDataException($"bool byte {x}") },
                GgufMetadataType.String => Str(),
                GgufMetadataType.UInt64 => U64(),
                _ => throw new InvalidDataException($"value type {t} not expected in these files"),
            };

            Assert.Equal("GGUF", Encoding.ASCII.GetString(b, 0, 4));
            pos = 4;
            uint version = U32();
            ulong tensorCount = U64(), kvCount = U64();
            var kv = new Dictionary<string, (GgufMetadataType, object)>();
            for (ulong i = 0; i < kvCount; i++)
            {
                string key = Str();
                var type = (GgufMetadataType)U32();
                object value;
                if (type == GgufMetadataType.Array)
                {
                    var et = (GgufMetadataType)U32();
                    int n = checked((int)U64());
                    value = et switch
                    {
                        GgufMetadataType.String => Enumerable.Range(0, n).Select(_ => Str()).ToArray(),
                        GgufMetadataType.Int32 => Enumerable.Range(0, n).Select(_ => (int)U32()).ToArray(),
                        _ => throw new InvalidDataException($"array of {et} not expected"),
                    };
                }
                else value = Value(type);
                Assert.True(kv.TryAdd(key, (type, value)), $"key {key} repeated");
            }
            var tensors = new Dictionary<string, (ulong[], GgmlType, ulong)>();
            for (ulong i = 0; i < tensorCount; i++)
            {
                string name = Str();
                uint dims = U32();
                var d = new ulong[dims];
                for (int j = 0; j < dims; j++) d[j] = U64();
                var type = (GgmlType)U32();
                ulong offset = U64();
                tensors.Add(name, (d, type, offset));
            }
            uint alignment = kv.TryGetValue("general.alignment", out var a) ? (uint)a.Item2 : 32u;
            long dataStart = (pos + alignment - 1) / alignment * alignment;
            // Padding is zeros; tensors must not overlap and must lie inside the file.
            Assert.All(b.AsSpan(pos, (int)(dataStart - pos)).ToArray(), x => Assert.Equal(0, x));
            long end = 0;
            foreach (var (name, t) in tensors.OrderBy(t => t.Value.Item3))
            {
                long bytes = ByteCount(t.Item1, t.Item2);
                Assert.True((long)t.Item3 >= end, $"{name} overlaps the tensor before it");
                end = (long)t.Item3 + bytes;
            }
            Assert.True(dataStart + end <= b.Length, "tensor data runs past the end of the file");
            return new GgufFile { Version = version, Kv = kv, Tensors = tensors, DataStart = dataStart, Bytes = b };
        }
    }
}
