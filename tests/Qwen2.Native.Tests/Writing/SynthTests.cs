using System.Text.Json;
using Qwen2.Kernels;

namespace Qwen2.Native.Tests;

/// <summary>Synthetic checkpoints: real shapes and configs, loadable, reproducible (the synth verb: Qwen2.Cli.Tests).</summary>
public class SynthTests
{
    [Theory]
    [InlineData(WeightType.BF16, "BF16", "bfloat16")]
    [InlineData(WeightType.F16, "F16", "float16")]
    [InlineData(WeightType.F32, "F32", "float32")]
    public void TinyLoadsAndRunsInEveryDtype(WeightType dtype, string headerDtype, string torchDtype)
    {
        using var dir = Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "ckpt"); // a directory that does not exist yet
        var result = SyntheticCheckpoint.Write(path, SyntheticShape.Tiny, dtype);
        Assert.Equal(SyntheticShape.Tiny.ParameterCount, result.ParameterCount);
        Assert.Equal(new FileInfo(Path.Combine(path, "model.safetensors")).Length, result.WeightFileBytes);

        using var model = Qwen2Model.Load(path);
        Assert.Equal(torchDtype, model.Config.TorchDtype);
        Assert.All(model.Tensors, t => Assert.Equal(headerDtype, t.Tensor.DType));
        Assert.DoesNotContain(model.Tensors, t => t.Tensor.Name == "lm_head.weight"); // tiny is tied
        Assert.Equal(result.ParameterCount, model.Tensors.Sum(t => t.Tensor.Shape.Aggregate(1L, (a, d) => a * d)));
        var logits = model.Forward([151644, 872, 198, 9707, 151645]);
        Assert.Equal(5, logits.Rows);
        Assert.Equal(151936, logits[0].Length);
        for (int r = 0; r < logits.Rows; r++)
        {
            Assert.All(logits[r].ToArray(), v => Assert.True(float.IsFinite(v)));
            Assert.True(logits[r].ToArray().Distinct().Count() > 1000, $"row {r} is nearly constant");
        }
    }

    [Fact]
    public void ConfigHasTheRealQwen2FieldsAndValues()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16);
        var c = Qwen2Config.Load(dir.File("config.json"));
        Assert.Equal((64, 2, 4, 2, 16, 176, 151936, 32768), (c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize, c.VocabSize, c.MaxPositionEmbeddings));
        Assert.Equal(1_000_000.0, c.RopeTheta);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.UseSlidingWindow);
        Assert.Equal(151643, c.BosTokenId);
        Assert.Equal([151645], c.EosTokenIds);

        using var doc = JsonDocument.Parse(File.ReadAllText(dir.File("config.json")));
        var r = doc.RootElement;
        Assert.Equal("Qwen2ForCausalLM", r.GetProperty("architectures")[0].GetString());
        Assert.Equal("qwen2", r.GetProperty("model_type").GetString());
        Assert.Equal("silu", r.GetProperty("hidden_act").GetString());
        Assert.Equal("0.0", r.GetProperty("attention_dropout").GetRawText());
        Assert.Equal("1000000.0", r.GetProperty("rope_theta").GetRawText());
        Assert.Equal("bfloat16", r.GetProperty("torch_dtype").GetString());
        Assert.Equal(2, r.GetProperty("max_window_layers").GetInt32());
        Assert.Equal(32768, r.GetProperty("sliding_window").GetInt32());
        var keys = r.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys); // sorted, as transformers writes it

        using var gen = JsonDocument.Parse(File.ReadAllText(dir.File("generation_config.json")));
        var g = gen.RootElement;
        Assert.Equal(151643, g.GetProperty("bos_token_id").GetInt32());
        Assert.Equal([151645, 151643], g.GetProperty("eos_token_id").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(151643, g.GetProperty("pad_token_id").GetInt32());
        Assert.True(g.GetProperty("do_sample").GetBoolean());
        Assert.Equal(0.7, g.GetProperty("temperature").GetDouble());
        Assert.Equal(0.8, g.GetProperty("top_p").GetDouble());
        Assert.Equal(20, g.GetProperty("top_k").GetInt32());
        Assert.Equal(1.05, g.GetProperty("repetition_penalty").GetDouble());
    }

    [Theory]
    // Hugging Face's parameter counts of the released models.
    [InlineData("qwen2-0.5b", 494_032_768L, 24, true)]
    [InlineData("qwen2-1.5b", 1_543_714_304L, 28, true)]
    [InlineData("qwen2.5-3b", 3_085_938_688L, 36, true)]
    [InlineData("qwen2-7b", 7_615_616_512L, 28, false)]
    public void NamedShapesHaveTheReleasedParameterCounts(string name, long parameters, int layers, bool tied)
    {
        var s = SyntheticShape.Get(name);
        Assert.Equal(parameters, s.ParameterCount);
        Assert.Equal(layers, s.NumHiddenLayers);
        Assert.Equal(tied, s.TieWordEmbeddings);
        Assert.Equal(tied ? 2 + 12 * layers : 3 + 12 * layers, s.TensorShapes().Count);
        Assert.Equal(2 * parameters, s.WeightBytes(WeightType.BF16));
        s.Validate();
        // The config it writes passes the engine's own checks.
        var config = Qwen2Config.Parse(System.Text.Encoding.UTF8.GetString(SyntheticCheckpoint.ConfigJson(s, WeightType.BF16)), name);
        Assert.Equal(s.HiddenSize / s.NumAttentionHeads, config.HeadDim);
        Assert.Equal(tied, config.TieWordEmbeddings);
    }

    [Theory]
    // The Qwen3 model cards give parameters rounded: total, and non-embedding (the layers' matrices and norms).
    [InlineData("qwen3-0.6b", 0.6, "0.44", 28, true)]
    [InlineData("qwen3-1.7b", 1.7, "1.4", 28, true)]
    [InlineData("qwen3-4b", 4.0, "3.6", 36, true)]
    [InlineData("qwen3-8b", 8.2, "6.95", 36, false)]
    public void Qwen3ShapesHaveTheModelCardsParameterCounts(string name, double billions, string nonEmbeddingBillions, int layers, bool tied)
    {
        var s = SyntheticShape.Get(name);
        long embeddings = (long)s.VocabSize * s.HiddenSize * (tied ? 1 : 2);
        Assert.Equal(billions, Math.Round(s.ParameterCount / 1e9, 1));
        // To the digits the card gives.
        int digits = nonEmbeddingBillions.Length - nonEmbeddingBillions.IndexOf('.', StringComparison.Ordinal) - 1;
        Assert.Equal(nonEmbeddingBillions, Math.Round((s.ParameterCount - embeddings) / 1e9, digits).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(layers, s.NumHiddenLayers);
        // Per layer: two norms, q/k/v/o, q_norm and k_norm, gate/up/down; no biases.
        Assert.Equal((tied ? 2 : 3) + 11 * layers, s.TensorShapes().Count);
        Assert.DoesNotContain(s.TensorShapes(), t => t.Name.EndsWith(".bias", StringComparison.Ordinal));
        s.Validate();
        var config = Qwen2Config.Parse(System.Text.Encoding.UTF8.GetString(SyntheticCheckpoint.ConfigJson(s, WeightType.BF16)), name);
        Assert.Equal(("qwen3", 128, false, true), (config.ModelType, config.HeadDim, config.AttentionBias, config.QkNorm));
    }

    [Theory]
    // The Qwen3-Embedding model cards round to these digits; the models are their Qwen3 namesakes without a head.
    [InlineData("qwen3-embedding-0.6b", "qwen3-0.6b", "0.6")]
    [InlineData("qwen3-embedding-4b", "qwen3-4b", "4")]
    [InlineData("qwen3-embedding-8b", "qwen3-8b", "8")]
    public void Qwen3EmbeddingShapesAreTheirModelsWithoutAHeadInBaseModelNames(string name, string model, string billions)
    {
        var s = SyntheticShape.Get(name);
        var lm = SyntheticShape.Get(model);
        Assert.True(s.Embedding);
        int digits = billions.Contains('.', StringComparison.Ordinal) ? billions.Length - billions.IndexOf('.', StringComparison.Ordinal) - 1 : 0;
        Assert.Equal(billions, Math.Round(s.ParameterCount / 1e9, digits).ToString(System.Globalization.CultureInfo.InvariantCulture));
        var expected = lm.TensorShapes().Where(t => t.Name != "lm_head.weight").Select(t => (t.Name["model.".Length..], t.Shape)).ToList();
        Assert.Equal(expected.Select(t => t.Item1), s.TensorShapes().Select(t => t.Name));
        Assert.Equal(expected.Select(t => t.Shape), s.TensorShapes().Select(t => t.Shape));
    }

    [Fact]
    public void UntiedShapesWriteALmHead()
    {
        using var dir = Fixtures.TempDir();
        var shape = SyntheticShape.Tiny with { Name = "tiny-untied", TieWordEmbeddings = false, VocabSize = 1000 };
        SyntheticCheckpoint.Write(dir.Path, shape, WeightType.F32);
        using var model = Qwen2Model.Load(dir.Path);
        Assert.False(model.Config.TieWordEmbeddings);
        Assert.Contains(model.Tensors, t => t.Tensor.Name == "lm_head.weight" && t.Tensor.ShapeText == "[1000, 64]");
        Assert.All(model.Forward([1, 2, 3])[2].ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void ValuesHaveTheStatedDistributionAndDtypesRoundTheSameFloats()
    {
        using var dir = Fixtures.TempDir();
        string f32 = Path.Combine(dir.Path, "f32"), bf16 = Path.Combine(dir.Path, "bf16");
        SyntheticCheckpoint.Write(f32, SyntheticShape.Tiny, WeightType.F32, seed: 7);
        SyntheticCheckpoint.Write(bf16, SyntheticShape.Tiny, WeightType.BF16, seed: 7);
        using var a = SafeTensorsFile.Open(Path.Combine(f32, "model.safetensors"));
        using var b = SafeTensorsFile.Open(Path.Combine(bf16, "model.safetensors"));
        float[] Values(SafeTensorsFile file, string name)
        {
            var info = file.Tensors[name];
            var v = new float[info.Shape.Aggregate(1L, (x, y) => x * y)];
            unsafe { WeightTypes.ToSingle(file.WeightTypeOf(info), new ReadOnlySpan<byte>(file.Pointer(info), (int)(info.End - info.Begin)), v); }
            return v;
        }
        var up = Values(a, "model.layers.1.mlp.up_proj.weight");
        double mean = up.Average(), std = Math.Sqrt(up.Average(x => (x - mean) * (x - mean)));
        Assert.InRange(mean, -0.001, 0.001);
        Assert.InRange(std, 0.019, 0.021);
        Assert.All(up, x => Assert.InRange(x, -0.0347f, 0.0347f));
        var norm = Values(a, "model.layers.0.input_layernorm.weight");
        Assert.All(norm, x => Assert.InRange(x, 0.965f, 1.035f));
        Assert.True(norm.Distinct().Count() > 32);
        Assert.All(Values(a, "model.layers.0.self_attn.k_proj.bias"), x => Assert.InRange(x, -0.0174f, 0.0174f));

        var embedF32 = Values(a, "model.embed_tokens.weight");
        var embedBf16 = Values(b, "model.embed_tokens.weight");
        for (int i = 0; i < embedF32.Length; i += 997)
            Assert.Equal(BitConverter.Int32BitsToSingle(SafeTensorsWriter.ToBFloat16(embedF32[i]) << 16), embedBf16[i]);
    }

    [Fact]
    public void SameSeedGivesIdenticalBytesAndAnotherSeedDoesNot()
    {
        using var dir = Fixtures.TempDir();
        string one = Path.Combine(dir.Path, "one"), two = Path.Combine(dir.Path, "two"), three = Path.Combine(dir.Path, "three");
        SyntheticCheckpoint.Write(one, SyntheticShape.Tiny, WeightType.BF16, seed: 42);
        SyntheticCheckpoint.Write(two, SyntheticShape.Tiny, WeightType.BF16, seed: 42);
        SyntheticCheckpoint.Write(three, SyntheticShape.Tiny, WeightType.BF16, seed: 43);
        foreach (var name in new[] { "model.safetensors", "config.json", "generation_config.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(one, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(two, name))), name);
        byte[] a = File.ReadAllBytes(Path.Combine(one, "model.safetensors")), c = File.ReadAllBytes(Path.Combine(three, "model.safetensors"));
        Assert.Equal(a.Length, c.Length);
        int same = 0;
        for (int i = 0; i < a.Length; i += 2) same += a[i] == c[i] && a[i + 1] == c[i + 1] ? 1 : 0;
        Assert.True(same < a.Length / 2 / 20, $"{same} of {a.Length / 2} elements equal"); // random, not merely shifted
    }

    [Fact]
    public void ProgressReachesTheTotal()
    {
        using var dir = Fixtures.TempDir();
        var reports = new List<SyntheticProgress>();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.F16, progress: new SyncProgress(reports.Add));
        Assert.NotEmpty(reports);
        Assert.Equal(reports[^1].TotalBytes, reports[^1].BytesWritten);
        Assert.Equal(SyntheticShape.Tiny.WeightBytes(WeightType.F16), reports[^1].TotalBytes);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.First.BytesWritten <= p.Second.BytesWritten));
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; this reports inline so the list is complete when Write returns.</summary>
    private sealed class SyncProgress(Action<SyntheticProgress> report) : IProgress<SyntheticProgress>
    {
        public void Report(SyntheticProgress value) => report(value);
    }

    [Fact]
    public void RefusesANonEmptyDirectoryUnlessOverwriting()
    {
        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("keep.txt"), "mine");
        var e = Assert.Throws<IOException>(() => SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16));
        Assert.Contains(dir.Path, e.Message);
        Assert.Contains("not empty", e.Message);
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));

        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16, overwrite: true);
        Assert.Equal("mine", File.ReadAllText(dir.File("keep.txt")));
        using var model = Qwen2Model.Load(dir.Path);
        Assert.Equal(2, model.Config.NumHiddenLayers);
    }

    [Fact]
    public void RefusesWhenTheDiskLacksSpaceBeforeCreatingAnything()
    {
        using var dir = Fixtures.TempDir();
        string target = Path.Combine(dir.Path, "new", "ckpt");
        string? probed = null;
        var e = Assert.Throws<IOException>(() => SyntheticCheckpoint.WriteWith(p => { probed = p; return 1_000_000; }, target, SyntheticShape.Tiny, WeightType.F32));
        Assert.Contains(target, e.Message);
        Assert.Contains("1,000,000 bytes free", e.Message);
        long fileBytes = SafeTensorsWriter.FileSize(SyntheticShape.Tiny.TensorShapes().Select(t => new TensorSpec(t.Name, WeightType.F32, t.Shape)));
        Assert.Contains($"({fileBytes.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} for model.safetensors", e.Message);
        Assert.Equal(dir.Path, probed); // the nearest directory that exists
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "new")));
    }

    [Fact]
    public void CancellingLeavesNoWeightFile()
    {
        using var dir = Fixtures.TempDir();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16, cancellationToken: cts.Token));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }
}
