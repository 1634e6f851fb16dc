using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Gguf;
using Qwen2.Native.Tests.Tokenizer;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>
/// GGUF files exported from the fixture checkpoints load back into the same model: F32 and F16 tensors are the
/// checkpoint's own bytes, so the logits are bit-identical to the safetensors checkpoint's, and both match the
/// independent PyTorch reference.
/// </summary>
public sealed class GgufModelTests
{
    /// <summary>Copies a fixture checkpoint, gives it a small tokenizer that fits its vocabulary, and exports it.</summary>
    internal static string Export(TempDir dir, string fixture, GgufFileType type)
    {
        string checkpoint = Path.Combine(dir.Path, "checkpoint");
        Directory.CreateDirectory(checkpoint);
        foreach (var f in Directory.GetFiles(Fixtures.Model(fixture))) File.Copy(f, Path.Combine(checkpoint, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(checkpoint, "tokenizer.json"),
            TinyTokenizerJson.Build(TinyTokenizerJson.AddedToken(262, "<|endoftext|>"), TinyTokenizerJson.AddedToken(263, "<|im_end|>")).ToJsonString());
        string gguf = Path.Combine(dir.Path, fixture + ".gguf");
        GgufExporter.Export(checkpoint, gguf, type);
        return gguf;
    }

    [Theory]
    [InlineData("tiny-f32", GgufFileType.F32)]
    [InlineData("untied-f16-mha", GgufFileType.F16)]
    public void Logits_are_bit_identical_to_the_safetensors_checkpoint(string fixture, GgufFileType type)
    {
        using var dir = Fixtures.TempDir();
        string gguf = Export(dir, fixture, type);
        using var st = Qwen2Model.Load(Fixtures.Model(fixture), new ModelOptions { Threads = 2 });
        using var gg = Qwen2Model.Load(gguf, new ModelOptions { Threads = 2 });
        Assert.True(gg.IsGguf);
        var (x, y) = (st.Config, gg.Config);
        Assert.Equal((x.HiddenSize, x.IntermediateSize, x.NumHiddenLayers, x.NumAttentionHeads, x.NumKeyValueHeads, x.HeadDim, x.VocabSize, x.MaxPositionEmbeddings, x.TieWordEmbeddings),
            (y.HiddenSize, y.IntermediateSize, y.NumHiddenLayers, y.NumAttentionHeads, y.NumKeyValueHeads, y.HeadDim, y.VocabSize, y.MaxPositionEmbeddings, y.TieWordEmbeddings));
        Assert.Equal(((float)x.RopeTheta, (float)x.RmsNormEps), ((float)y.RopeTheta, (float)y.RmsNormEps));
        var golden = Fixtures.Golden(fixture);
        var a = st.Forward(golden.Tokens).Values.ToArray();
        var b = gg.Forward(golden.Tokens).Values.ToArray();
        Assert.Equal(a.Select(BitConverter.SingleToInt32Bits), b.Select(BitConverter.SingleToInt32Bits));
        for (int i = 0; i < golden.Logits.Length; i++)
            for (int j = 0; j < golden.Logits[i].Length; j++)
                Assert.True(Math.Abs(golden.Logits[i][j] - b[i * gg.Config.VocabSize + j]) < 1e-3, $"row {i} col {j}");
        Assert.Equal(st.DecodeBytesPerToken > 0, gg.DecodeBytesPerToken > 0);
    }

    [Theory]
    [InlineData("headdim-bf16")]
    [InlineData("sharded-bf16")]
    public void Bf16_checkpoints_exported_as_f32_match_the_reference(string fixture)
    {
        using var dir = Fixtures.TempDir();
        string gguf = Export(dir, fixture, GgufFileType.F32);
        using var gg = Qwen2Model.Load(gguf, new ModelOptions { Threads = 1 });
        var golden = Fixtures.Golden(fixture);
        var logits = gg.Forward(golden.Tokens);
        for (int i = 0; i < golden.Logits.Length; i++)
            for (int j = 0; j < golden.Logits[i].Length; j++)
                Assert.True(Math.Abs(golden.Logits[i][j] - logits[i][j]) < 1e-3, $"row {i} col {j}: {golden.Logits[i][j]} vs {logits[i][j]}");
        var session = new InferenceSession(gg);
        var greedy = session.Generate(golden.Tokens, new GenerationOptions { Sampling = SamplingOptions.Greedy, MaxNewTokens = golden.Greedy.Length, IgnoreEos = true }).ToArray();
        Assert.Equal(golden.Greedy, greedy);
    }

    [Fact]
    public void The_listing_gives_ggml_types_and_shapes_outermost_first()
    {
        using var dir = Fixtures.TempDir();
        using var gg = Qwen2Model.Load(Export(dir, "untied-f16-mha", GgufFileType.F16), new ModelOptions { Threads = 1 });
        var tensors = gg.Tensors.ToDictionary(t => t.Tensor.Name, t => t.Tensor);
        Assert.Equal("F16", tensors["blk.0.attn_q.weight"].DType);
        Assert.Equal("F32", tensors["blk.0.attn_q.bias"].DType);
        Assert.Equal([gg.Config.VocabSize, gg.Config.HiddenSize], tensors["output.weight"].Shape);
        Assert.False(gg.Config.TieWordEmbeddings);
    }

    [Fact]
    public void The_pipeline_takes_tokenizer_template_and_eos_from_the_metadata()
    {
        using var dir = Fixtures.TempDir();
        string checkpoint = Path.Combine(dir.Path, "ckpt");
        SyntheticCheckpoint.Write(checkpoint, SyntheticShape.Tiny, WeightType.BF16, seed: 3);
        TinyChatModel.CopyTokenizer(checkpoint);
        string gguf = dir.File("tiny.gguf");
        GgufExporter.Export(checkpoint, gguf, GgufFileType.F16);

        using var pipeline = Qwen2Pipeline.FromPretrained(gguf);
        var hf = Qwen2Tokenizer.Load(checkpoint);
        Assert.True(pipeline.Model.IsGguf);
        Assert.Equal(hf.Settings.ChatTemplate, pipeline.Tokenizer.Settings.ChatTemplate);
        Assert.Equal(hf.Settings.EosToken, pipeline.Tokenizer.Settings.EosToken);
        Assert.Equal(hf.VocabSize, pipeline.Tokenizer.VocabSize);
        int imEnd = hf.TokenToId("<|im_end|>")!.Value;
        Assert.Contains(imEnd, pipeline.TextStopTokenIds);
        Assert.Contains(imEnd, pipeline.DefaultStopTokenIds); // tokenizer.ggml.eos_token_id
        // No generation_config.json in a GGUF file: the engine's no-config defaults (greedy).
        Assert.Equal(new GenerationConfig(), pipeline.GenerationConfig);
        string prompt = pipeline.ChatTemplate.Render([ChatMessage.User("Hi there")]);
        Assert.Equal(hf.Encode(prompt), pipeline.Tokenizer.Encode(prompt));
    }

    [Fact]
    public void A_tensor_larger_than_a_span_is_addressed_through_pointers()
    {
        // A 7B F32 output matrix (152064 x 3584 x 4 bytes = 2.18 GB) in a sparse file: it opens, and its last row reads back.
        using var dir = Fixtures.TempDir();
        string path = dir.File("big.gguf");
        const long rows = 152064, cols = 3584;
        var g = new RawGguf { HeaderOnly = true }.String("general.architecture", "qwen2");
        g.Tensors.Add(new RawTensor { Name = "output.weight", Dims = [cols, rows], Type = 0 });
        var header = g.Build();
        using (var fs = new FileStream(path, FileMode.CreateNew))
        {
            long dataStart = header.Length;
            fs.Write(header);
            fs.SetLength(dataStart + rows * cols * 4);
            fs.Position = dataStart + (rows - 1) * cols * 4;
            fs.Write(BitConverter.GetBytes(1.5f));
        }
        using var file = GgufFile.Open(path);
        var t = file.Tensors.Single();
        Assert.True(t.ByteCount > int.MaxValue);
        unsafe
        {
            var m = new WeightMatrix(file.Pointer(t), (int)rows, (int)cols, file.WeightTypeOf(t));
            var row = new float[cols];
            m.ReadRow((int)rows - 1, row);
            Assert.Equal(1.5f, row[0]);
            Assert.Equal(0f, row[1]);
        }
    }
}
