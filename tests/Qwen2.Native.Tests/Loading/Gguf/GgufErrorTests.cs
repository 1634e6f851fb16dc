using System.Text;

namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>Each hardening rule of the GGUF reader and loader, broken once: a <see cref="CheckpointException"/> that names the field or tensor.</summary>
public sealed class GgufErrorTests
{
    public sealed record Case(string Name, Func<byte[]> Bytes, string? Field, string? Tensor, string Message, bool ModelLoad = false)
    {
        public override string ToString() => Name;
    }

    private static byte[] Edit(Action<RawGguf> edit, bool tied = true)
    {
        var g = TinyGgufModel.Build(tied: tied);
        edit(g);
        return g.Build();
    }

    private static RawTensor T(RawGguf g, string name) => g.Tensors.Single(t => t.Name == name);

    private static byte[] Replace(RawGguf g, string key, Action<RawGguf> add)
    {
        g.Kv.RemoveAll(kv => Encoding.UTF8.GetString(kv.Key) == key);
        add(g);
        return g.Build();
    }

    public static readonly Case[] Cases =
    [
        new("bad magic", () => Edit(g => g.Magic = 0x46554746), "magic", null, "GGUF magic"),
        new("version 1", () => Edit(g => g.Version = 1), "version", null, "version 1"),
        new("version 4", () => Edit(g => g.Version = 4), "version", null, "version 4 is not supported"),
        new("big-endian", () => Edit(g => g.Version = 0x03000000), "version", null, "big-endian"),
        new("metadata count past the file", () => Edit(g => g.KvCountOverride = ulong.MaxValue / 2), "metadata_kv_count", null, "cannot fit"),
        new("tensor count past the file", () => Edit(g => g.TensorCountOverride = 1UL << 40), "tensor_count", null, "cannot fit"),
        new("string length past the file", () => Edit(g => g.Raw("x.s", 8, [.. BitConverter.GetBytes(1UL << 62)])), "x.s", null, "limit"),
        new("string length one past the file", () => Edit(g => g.Raw("x.s", 8, [.. BitConverter.GetBytes(1UL << 20)])), "x.s", null, "left"),
        new("array count past the file", () => Edit(g => g.Raw("x.a", 9, [.. BitConverter.GetBytes(4u), .. BitConverter.GetBytes(1UL << 61)])), "x.a", null, "cannot fit"),
        new("array of strings count past the file", () => Edit(g => g.Raw("x.a", 9, [.. BitConverter.GetBytes(8u), .. BitConverter.GetBytes(1UL << 40)])), "x.a", null, "cannot fit"),
        new("array of arrays", () => Edit(g => g.Raw("x.a", 9, [.. BitConverter.GetBytes(9u), .. BitConverter.GetBytes(1UL)])), "x.a", null, "array of arrays"),
        new("unknown value type", () => Edit(g => g.Raw("x.t", 13, [0])), "x.t", null, "not a GGUF value type"),
        new("bool of 2", () => Edit(g => g.Raw("x.b", 7, [2])), "x.b", null, "neither 0 nor 1"),
        new("invalid UTF-8 key", () => Edit(g => g.Kv.Add(([0xC3, 0x28], [.. BitConverter.GetBytes(4u), 0, 0, 0, 0]))), "metadata", null, "UTF-8"),
        new("empty key", () => Edit(g => g.Kv.Add(([], [.. BitConverter.GetBytes(4u), 0, 0, 0, 0]))), "metadata", null, "empty"),
        new("duplicate key", () => Edit(g => g.UInt32("qwen2.block_count", 1)), "qwen2.block_count", null, "twice"),
        new("alignment not a power of two", () => Replace(TinyGgufModel.Build(), "general.alignment", g => g.UInt32("general.alignment", 48)), "general.alignment", null, "power of two"),
        new("alignment zero", () => Replace(TinyGgufModel.Build(), "general.alignment", g => g.UInt32("general.alignment", 0)), "general.alignment", null, "power of two"),
        new("alignment not uint32", () => Replace(TinyGgufModel.Build(), "general.alignment", g => g.String("general.alignment", "32")), "general.alignment", null, "expected uint32"),
        new("duplicate tensor", () => Edit(g => g.Tensor("output_norm.weight", [TinyGgufModel.Hidden])), null, "output_norm.weight", "twice"),
        new("no dimensions", () => Edit(g => T(g, "output_norm.weight").NDimsOverride = 0), "n_dims", "output_norm.weight", "dimensions"),
        new("five dimensions", () => Edit(g => g.Tensor("x", [1, 1, 1, 1, 1])), "n_dims", "x", "5 dimensions"),
        new("negative dimension", () => Edit(g => g.Tensor("x", [-4])), "ne", "x", "negative"),
        new("row not whole blocks", () => Edit(g => g.Tensor("x", [48, 2], GgmlType.Q8_0)), "ne", "x", "blocks of 32"),
        new("element count overflow", () => Edit(g => g.Tensor("x", [1L << 32, 1L << 32, 1L << 32])), "ne", "x", "64 bits"),
        new("byte count overflow", () => Edit(g => g.Tensor("x", [1L << 31, 1L << 31])), "ne", "x", "64 bits"),
        new("unknown type id", () => Edit(g => T(g, "output_norm.weight").Type = 31), "type", "output_norm.weight", "type id 31"),
        new("tensor name too long", () => Edit(g => g.Tensor(new string('x', 64), [4])), "tensor name", null, "limit"),
        new("invalid UTF-8 tensor name", () => Edit(g => g.Tensors.Add(new RawTensor { Name = "?", NameBytes = [0xFF], Dims = [4] })), "tensor name", null, "UTF-8"),
        new("misaligned offset", () => Edit(g => T(g, "token_embd.weight").Offset = 4), "offset", "token_embd.weight", "expected 0"),
        new("tensors out of order", () => Edit(g => { T(g, "token_embd.weight").Offset = 1 << 16; }), "offset", "token_embd.weight", "expected 0"),
        new("negative offset", () => Edit(g => T(g, "token_embd.weight").Offset = -32), "offset", "token_embd.weight", "offset -32"),
        new("data past the end", () => Edit(g => g.TruncateDataBy = 40), "offset", "output_norm.weight", "past the end"),
        new("file shorter than a header", () => "GGUF"u8.ToArray(), "magic", null, "too short"),
        // model-level rules
        new("unsupported type", () => Edit(g => { var t = T(g, "blk.0.ffn_up.weight"); t.Type = (uint)GgmlType.Q3_K; t.Dims = [256, 2]; }), "type", "blk.0.ffn_up.weight", "Q3_K", ModelLoad: true),
        new("shape against the config", () => Edit(g => T(g, "blk.0.attn_k.weight").Dims = [TinyGgufModel.Hidden, 8]), "shape", "blk.0.attn_k.weight", "expected [16, 32] from the GGUF metadata", ModelLoad: true),
        new("missing tensor", () => Edit(g => g.Tensors.Remove(T(g, "blk.0.attn_v.bias"))), null, "blk.0.attn_v.bias", "missing", ModelLoad: true),
        new("unknown architecture", () => Replace(TinyGgufModel.Build(), "general.architecture", g => g.String("general.architecture", "llama")), "general.architecture", null, "\"llama\"", ModelLoad: true),
        new("missing config key", () => Replace(TinyGgufModel.Build(), "qwen2.embedding_length", _ => { }), "qwen2.embedding_length", null, "missing", ModelLoad: true),
        new("config key of the wrong type", () => Replace(TinyGgufModel.Build(), "qwen2.block_count", g => g.String("qwen2.block_count", "1")), "qwen2.block_count", null, "expected an integer", ModelLoad: true),
        new("kv heads do not divide", () => Replace(TinyGgufModel.Build(), "qwen2.attention.head_count_kv", g => g.UInt32("qwen2.attention.head_count_kv", 3)), "qwen2.attention.head_count_kv", null, "does not divide", ModelLoad: true),
        new("rope scaling", () => Edit(g => g.String("qwen2.rope.scaling.type", "yarn")), "qwen2.rope.scaling.type", null, "yarn", ModelLoad: true),
        new("eos id out of range", () => Replace(TinyGgufModel.Build(), "tokenizer.ggml.eos_token_id", g => g.UInt32("tokenizer.ggml.eos_token_id", 100000)), "tokenizer.ggml.eos_token_id", null, "must lie in", ModelLoad: true),
        new("split count without part names", () => Edit(g => { g.UInt32("split.count", 3); g.UInt32("split.no", 0); }), "split.count", null, "first one", ModelLoad: true),
    ];

    public static TheoryData<Case> All => new(Cases);

    [Theory]
    [MemberData(nameof(All))]
    public void Refused_with_a_typed_error_naming_the_culprit(Case c)
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("model.gguf");
        File.WriteAllBytes(path, c.Bytes());
        var e = Assert.Throws<CheckpointException>(() =>
        {
            if (c.ModelLoad) Qwen2Model.Load(path, new ModelOptions { Threads = 1 }).Dispose();
            else GgufFile.Open(path).Dispose();
        });
        Assert.Equal(path, e.FilePath);
        Assert.Equal(c.Field, e.Field);
        Assert.Equal(c.Tensor, e.TensorName);
        Assert.Contains(c.Message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_unbroken_model_opens_and_loads()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("model.gguf");
        File.WriteAllBytes(path, TinyGgufModel.Build().Build());
        using (var file = GgufFile.Open(path))
        {
            Assert.Equal(3u, file.Version);
            Assert.Equal(14, file.Tensors.Count);
            Assert.Equal(new long[] { TinyGgufModel.Vocab, TinyGgufModel.Hidden }, file.Tensors[0].Shape);
        }
        using var model = Qwen2Model.Load(path, new ModelOptions { Threads = 1 });
        Assert.True(model.Config.TieWordEmbeddings);
        Assert.Equal(TinyGgufModel.Vocab, model.Config.VocabSize);
        Assert.Equal([TinyGgufModel.Vocab - 1], model.Config.EosTokenIds);
        Assert.All(model.Forward([1, 2, 3])[2].ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Every_truncation_is_refused()
    {
        var bytes = TinyGgufModel.Build().Build();
        using var dir = Fixtures.TempDir();
        string path = dir.File("cut.gguf");
        using (var whole = GgufFile.Open(WriteTo(path, bytes))) Assert.NotEmpty(whole.Tensors);
        // Every cut inside the header and tensor table, and a sample through the data.
        long headerEnd, dataEnd;
        using (var f = GgufFile.Open(path)) (headerEnd, dataEnd) = (f.DataStart, f.DataStart + f.Tensors[^1].Offset + f.Tensors[^1].ByteCount);
        for (int n = 0; n < dataEnd; n += n < headerEnd ? 1 : 97)
        {
            WriteTo(path, bytes.AsSpan(0, n).ToArray());
            Assert.Throws<CheckpointException>(() => GgufFile.Open(path).Dispose());
        }
    }

    private static string WriteTo(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
