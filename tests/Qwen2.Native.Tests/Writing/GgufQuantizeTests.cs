using Qwen2.Kernels;
using Qwen2.Native.Gguf;

namespace Qwen2.Native.Tests;

/// <summary>
/// GgufExporter with a quantization mix: the file's metadata, each tensor's type (written out by hand from llama.cpp's
/// rules for these shapes), and each tensor's bytes (the reference quantizer applied to the checkpoint's floats).
/// </summary>
public class GgufQuantizeTests
{
    private static readonly string[] Matrices = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

    /// <summary>h256 in q4_k_m: use_more_bits(i, 4) picks layers 2 and 3 (i ≥ 7·4/8 = 3, or i % 3 == 2).</summary>
    private static string ExpectedH256Q4KM(string name) => name switch
    {
        "token_embd.weight" => "Q6_K", // tied: the output matrix
        _ when !name.EndsWith("weight", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal) => "F32",
        _ when (name.Contains("attn_v.", StringComparison.Ordinal) || name.Contains("ffn_down.", StringComparison.Ordinal)) && name[4] is '2' or '3' => "Q6_K",
        _ => "Q4_K",
    };

    /// <summary>h896 in q4_k_m: 896 columns fall back (Q4_K→Q5_0, Q6_K→Q8_0); ffn_down's 1024 do not; layer 1 gets more bits.</summary>
    private static string ExpectedH896Q4KM(string name) => name switch
    {
        "token_embd.weight" => "Q8_0",
        _ when !name.EndsWith("weight", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal) => "F32",
        "blk.1.attn_v.weight" => "Q8_0",
        "blk.0.ffn_down.weight" => "Q4_K",
        "blk.1.ffn_down.weight" => "Q6_K",
        _ => "Q5_0",
    };

    public static TheoryData<string, GgufFileType> Files => new()
    {
        { "h256", GgufFileType.Q4_K_M },
        { "h896", GgufFileType.Q4_K_M },
        { "h256", GgufFileType.Q8_0 },
        { "h256", GgufFileType.Q6_K },
        { "h256", GgufFileType.Q4_0 },
    };

    [Theory, MemberData(nameof(Files))]
    public unsafe void Quantized_export_has_llama_cpps_types_and_the_reference_bytes(string shapeName, GgufFileType type)
    {
        var shape = shapeName == "h256" ? QuantizedCheckpoints.H256 : QuantizedCheckpoints.H896;
        string path = QuantizedCheckpoints.Gguf(shape, type);
        var g = GgufTests.GgufFile.Read(path);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)type), g.Kv["general.file_type"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)2u), g.Kv["general.quantization_version"]);
        Assert.Equal((GgufMetadataType.String, (object)"qwen2"), g.Kv["tokenizer.ggml.pre"]);
        Assert.Equal(shape.VocabSize, ((string[])g.Kv["tokenizer.ggml.tokens"].Value).Length);
        Assert.Equal(1 + 12 * shape.NumHiddenLayers + 1, g.Tensors.Count);

        using var files = new CheckpointFiles(QuantizedCheckpoints.Checkpoint(shape));
        foreach (var (name, t) in g.Tensors)
        {
            string expected = type switch
            {
                GgufFileType.Q4_K_M => shapeName == "h256" ? ExpectedH256Q4KM(name) : ExpectedH896Q4KM(name),
                _ when t.Dims.Length == 1 => "F32",
                GgufFileType.Q4_0 when name == "token_embd.weight" => "Q6_K", // the tied output matrix
                _ => type.ToString(),
            };
            Assert.Equal((name, expected), (name, t.Type.ToString()));
            Assert.Equal(0ul, t.Offset % 32);
            if (t.Dims.Length == 1) continue;
            // The bytes are the reference quantizer's on the checkpoint's floats (BF16 widened exactly).
            Assert.True(files.TryGet(HfName(name), out var file, out var info), name);
            long n = info.Shape[0] * info.Shape[1];
            var floats = new float[n];
            WeightTypes.ToSingle(file.WeightTypeOf(info), new ReadOnlySpan<byte>(file.Pointer(info), checked((int)(info.End - info.Begin))), floats);
            var weightType = GgmlTypeLayout.ToWeightType(t.Type);
            var want = new byte[WeightTypes.ByteCount(weightType, n)];
            WeightQuantizer.Quantize(weightType, floats, want);
            Assert.True(g.Data(name).SequenceEqual(want), $"{name}: the bytes differ from the reference quantizer's");
        }
    }

    private static string HfName(string gguf)
    {
        if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
        var parts = gguf.Split('.');
        string p = $"model.layers.{parts[1]}.";
        return parts[2] switch
        {
            "attn_q" => p + "self_attn.q_proj.weight",
            "attn_k" => p + "self_attn.k_proj.weight",
            "attn_v" => p + "self_attn.v_proj.weight",
            "attn_output" => p + "self_attn.o_proj.weight",
            "ffn_gate" => p + "mlp.gate_proj.weight",
            "ffn_up" => p + "mlp.up_proj.weight",
            _ => p + "mlp.down_proj.weight",
        };
    }

    [Fact]
    public void A_non_finite_weight_is_named_and_no_file_is_left()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, QuantizedCheckpoints.H256, WeightType.F32, seed: 1);
        TinyChatModel.CopyTokenizer(dir.Path);
        string st = Path.Combine(dir.Path, "model.safetensors");
        long at;
        using (var f = SafeTensorsFile.Open(st))
        {
            // safetensors: an 8-byte header length, the JSON header, then the data the offsets count from.
            long dataStart = 8 + BitConverter.ToInt64(File.ReadAllBytes(st).AsSpan(0, 8));
            at = dataStart + f.Tensors["model.layers.1.mlp.up_proj.weight"].Begin + (5 * 256 + 17) * sizeof(float); // row 5, column 17
        }
        using (var s = new FileStream(st, FileMode.Open, FileAccess.Write))
        {
            s.Position = at;
            s.Write(BitConverter.GetBytes(float.NaN));
        }
        string output = dir.File("x.gguf");
        var e = Assert.Throws<CheckpointException>(() => GgufExporter.Export(dir.Path, output, GgufFileType.Q8_0));
        Assert.Equal("model.layers.1.mlp.up_proj.weight", e.TensorName);
        Assert.Contains("row 5", e.Message);
        Assert.Contains("value 17", e.Message);
        Assert.False(File.Exists(output));
        Assert.False(File.Exists(output + ".partial"));
    }
}
