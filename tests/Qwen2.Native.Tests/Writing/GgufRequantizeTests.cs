using Qwen2.Kernels;
using Qwen2.Native.Gguf;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// GgufExporter reading a GGUF file: a float GGUF quantizes to the same bytes as its safetensors checkpoint, the
/// metadata (tokenizer included) is carried over, and an already-quantized input is copied when its type is kept and
/// requantized only when allowed.
/// </summary>
public class GgufRequantizeTests
{
    private static readonly SyntheticShape Shape = QuantizedCheckpoints.H256;

    [Fact]
    public void A_float_gguf_quantizes_to_the_bytes_and_metadata_of_its_checkpoint()
    {
        using var dir = new TempDir();
        string output = dir.File("from-gguf.gguf");
        GgufExporter.Export(QuantizedCheckpoints.Gguf(Shape, GgufFileType.F32), output, GgufFileType.Q4_K_M);
        var fromGguf = GgufTests.GgufFile.Read(output);
        var direct = GgufTests.GgufFile.Read(QuantizedCheckpoints.Gguf(Shape, GgufFileType.Q4_K_M));

        Assert.Equal(direct.Tensors.Keys, fromGguf.Tensors.Keys); // same tensors, same order
        foreach (var (name, t) in direct.Tensors)
        {
            Assert.Equal((name, t.Type), (name, fromGguf.Tensors[name].Type));
            Assert.Equal(t.Dims, fromGguf.Tensors[name].Dims);
            Assert.True(direct.Data(name).SequenceEqual(fromGguf.Data(name)), $"{name}: the bytes differ from quantizing the checkpoint");
        }
        // Every key (general.file_type of the new mix, qwen2.*, the whole tokenizer) as the direct export writes it.
        Assert.Equal(direct.Kv.Keys.Order(), fromGguf.Kv.Keys.Order());
        foreach (var (key, (type, value)) in direct.Kv)
        {
            Assert.Equal((key, type), (key, fromGguf.Kv[key].Type));
            Assert.Equal(value, fromGguf.Kv[key].Value);
        }
        Assert.Equal((object)(uint)GgufFileType.Q4_K_M, fromGguf.Kv["general.file_type"].Value);
    }

    [Fact]
    public void The_tokenizer_is_carried_over()
    {
        using var dir = new TempDir();
        string output = dir.File("q8.gguf");
        // Q8_0 from the F16 export: every tensor converted, the metadata copied from a GGUF input.
        GgufExporter.Export(QuantizedCheckpoints.Gguf(Shape, GgufFileType.F16), output, GgufFileType.Q8_0);
        var fromGguf = Qwen2Tokenizer.FromGguf(output);
        var huggingFace = Qwen2Tokenizer.Load(QuantizedCheckpoints.Checkpoint(Shape));
        foreach (string text in new[] { "<|im_start|>user\nHello, 世界! 12345<|im_end|>\n", "  def f(x):\n\treturn x**2  # ünïcödé 🙂", "<|endoftext|>" })
            Assert.Equal(huggingFace.Encode(text), fromGguf.Encode(text));
        var g = GgufTests.GgufFile.Read(output);
        Assert.Equal((object)(uint)GgufFileType.Q8_0, g.Kv["general.file_type"].Value);
        Assert.Equal((object)"qwen2", g.Kv["tokenizer.ggml.pre"].Value);
        Assert.True(g.Kv.ContainsKey("tokenizer.chat_template"));
    }

    [Fact]
    public void Requantizing_is_refused_without_the_flag_naming_the_tensor_type_and_flag()
    {
        using var dir = new TempDir();
        string output = dir.File("q4.gguf");
        var e = Assert.Throws<CheckpointException>(() =>
            GgufExporter.Export(QuantizedCheckpoints.Gguf(Shape, GgufFileType.Q8_0), output, GgufFileType.Q4_K_M));
        // The first tensor: Q8_0 in the input, Q6_K (the tied output matrix) in q4_k_m.
        Assert.Contains("token_embd.weight", e.Message);
        Assert.Contains("Q8_0", e.Message);
        Assert.Contains("Q6_K", e.Message);
        Assert.Contains("--allow-requantize", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public unsafe void Requantizing_with_the_flag_quantizes_the_dequantized_weights()
    {
        var (source, g) = FromQ8(GgufFileType.Q4_K_M, allowRequantize: true);
        var direct = GgufTests.GgufFile.Read(QuantizedCheckpoints.Gguf(Shape, GgufFileType.Q4_K_M));
        foreach (var (name, t) in g.Tensors)
        {
            Assert.Equal((name, direct.Tensors[name].Type), (name, t.Type)); // the mix's types, as from the checkpoint
            var from = source.Tensors[name];
            if (t.Type == from.Type)
            {
                Assert.True(source.Data(name).SequenceEqual(g.Data(name)), $"{name}: not copied as it was");
                continue;
            }
            // The reference quantizer on the input's values, dequantized.
            var floats = Dequantized(source, name);
            var type = GgmlTypeLayout.ToWeightType(t.Type);
            var want = new byte[WeightTypes.ByteCount(type, floats.Length)];
            WeightQuantizer.Quantize(type, floats, want);
            Assert.True(g.Data(name).SequenceEqual(want), $"{name}: the bytes differ from requantizing the input");
        }
        Assert.Equal((object)(uint)GgufFileType.Q4_K_M, g.Kv["general.file_type"].Value);
    }

    [Fact]
    public void Exporting_a_quantized_gguf_as_f32_dequantizes_it_without_the_flag()
    {
        var (source, g) = FromQ8(GgufFileType.F32);
        foreach (var (name, t) in g.Tensors)
        {
            Assert.Equal((name, GgmlType.F32), (name, t.Type));
            var want = Dequantized(source, name);
            Assert.True(System.Runtime.InteropServices.MemoryMarshal.AsBytes(want.AsSpan()).SequenceEqual(g.Data(name)), $"{name}: not the input's values");
        }
        Assert.Equal((object)(uint)GgufFileType.F32, g.Kv["general.file_type"].Value);
        Assert.False(g.Kv.ContainsKey("general.quantization_version"));
    }

    [Fact]
    public void A_quantized_gguf_kept_at_its_type_is_copied_without_the_flag()
    {
        var (source, g) = FromQ8(GgufFileType.Q8_0);
        Assert.Equal(source.Tensors.Keys, g.Tensors.Keys);
        foreach (var name in source.Tensors.Keys)
        {
            Assert.Equal((name, source.Tensors[name].Type), (name, g.Tensors[name].Type));
            Assert.True(source.Data(name).SequenceEqual(g.Data(name)), $"{name}: not copied as it was");
        }
    }
    /// <summary>The Q8_0 export of the checkpoint, and that file exported again as <paramref name="type"/>, both read back.</summary>
    private static (GgufTests.GgufFile Source, GgufTests.GgufFile Output) FromQ8(GgufFileType type, bool allowRequantize = false)
    {
        using var dir = new TempDir();
        string input = QuantizedCheckpoints.Gguf(Shape, GgufFileType.Q8_0), output = dir.File("out.gguf");
        GgufExporter.Export(input, output, type, allowRequantize);
        return (GgufTests.GgufFile.Read(input), GgufTests.GgufFile.Read(output));
    }

    /// <summary>A tensor's values, widened or dequantized by the kernels' scalar conversion.</summary>
    private static float[] Dequantized(GgufTests.GgufFile file, string name)
    {
        var t = file.Tensors[name];
        var values = new float[t.Dims.Aggregate(1L, (a, d) => a * (long)d)];
        WeightTypes.ToSingle(GgmlTypeLayout.ToWeightType(t.Type), file.Data(name), values);
        return values;
    }
}

/// <summary>GgufWriter.AddValue: every metadata type the reader gives back, written with its own tag and read back equal.</summary>
public class GgufWriterCopyTests
{
    [Fact]
    public void Every_value_type_round_trips()
    {
        using var dir = new TempDir();
        var values = new Dictionary<string, GgufValue>
        {
            ["u8"] = new(GgufMetadataType.UInt8, GgufMetadataType.UInt8, (byte)200),
            ["i8"] = new(GgufMetadataType.Int8, GgufMetadataType.Int8, (sbyte)-7),
            ["u16"] = new(GgufMetadataType.UInt16, GgufMetadataType.UInt16, (ushort)60000),
            ["i16"] = new(GgufMetadataType.Int16, GgufMetadataType.Int16, (short)-30000),
            ["u32"] = new(GgufMetadataType.UInt32, GgufMetadataType.UInt32, 4000000000u),
            ["i32"] = new(GgufMetadataType.Int32, GgufMetadataType.Int32, -2000000000),
            ["f32"] = new(GgufMetadataType.Float32, GgufMetadataType.Float32, 1.5e-6f),
            ["bool"] = new(GgufMetadataType.Bool, GgufMetadataType.Bool, true),
            ["str"] = new(GgufMetadataType.String, GgufMetadataType.String, "héllo"),
            ["u64"] = new(GgufMetadataType.UInt64, GgufMetadataType.UInt64, ulong.MaxValue - 1),
            ["i64"] = new(GgufMetadataType.Int64, GgufMetadataType.Int64, long.MinValue + 1),
            ["f64"] = new(GgufMetadataType.Float64, GgufMetadataType.Float64, Math.PI),
            ["a.str"] = new(GgufMetadataType.Array, GgufMetadataType.String, new[] { "a", "", "ü" }),
            ["a.i32"] = new(GgufMetadataType.Array, GgufMetadataType.Int32, new[] { 1, -2, 3 }),
            ["a.f32"] = new(GgufMetadataType.Array, GgufMetadataType.Float32, new[] { 0.25f, -8f }),
            ["a.u8"] = new(GgufMetadataType.Array, GgufMetadataType.UInt8, new byte[] { 0, 255 }),
        };
        string path = dir.File("kv.gguf");
        using (var w = new GgufWriter(path))
        {
            foreach (var (key, value) in values) w.AddValue(key, value);
            w.AddTensor("t", [32], GgmlType.F32);
            w.Begin();
            w.Write(new byte[128]);
            w.Complete();
        }
        using var file = Qwen2.Native.GgufFile.Open(path);
        foreach (var (key, value) in values)
        {
            var read = file.Metadata[key];
            Assert.Equal((key, value.Type, value.ElementType), (key, read.Type, read.ElementType));
            Assert.Equal(value.Value, read.Value);
        }
    }

    [Fact]
    public void A_value_that_does_not_match_its_tag_is_refused()
    {
        using var dir = new TempDir();
        using var w = new GgufWriter(dir.File("x.gguf"));
        var e = Assert.Throws<ArgumentException>(() => w.AddValue("k", new GgufValue(GgufMetadataType.UInt32, GgufMetadataType.UInt32, "text")));
        Assert.Contains("'k'", e.Message);
    }
}
