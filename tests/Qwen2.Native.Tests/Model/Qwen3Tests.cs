using Qwen2.Kernels;
using Qwen2.Native.Gguf;
using Qwen2.Reference;

namespace Qwen2.Native.Tests.Model;

/// <summary>
/// Dense Qwen3 (q_norm and k_norm per head before RoPE, no projection biases, head_dim not hidden / heads) against
/// the float64 reference, which implements modeling_qwen3.py's attention on its own (ReferenceForward.HeadNorm).
/// </summary>
public class Qwen3Tests
{
    private static readonly int[] Ids = [9707, 11, 1879, 0, 358, 1079, 264, 1614, 13, 2585, 525, 498];

    /// <summary>attention_bias on (q, k, v and o biases), an untied lm_head, as many kv heads as query heads.</summary>
    private static readonly SyntheticShape BiasedUntiedMha = SyntheticShape.TinyQwen3 with
    {
        Name = "tiny-qwen3-bias-untied-mha", NumKeyValueHeads = 4, TieWordEmbeddings = false, AttentionBias = true,
    };

    public static TheoryData<WeightType, bool> Types => new()
    {
        { WeightType.F32, false }, { WeightType.BF16, false }, { WeightType.F16, false }, { WeightType.BF16, true },
    };

    [Theory, MemberData(nameof(Types))]
    public void Logits_match_the_reference_at_every_position_with_and_without_the_cache(WeightType type, bool biasedUntiedMha)
    {
        using var dir = Fixtures.TempDir();
        var shape = biasedUntiedMha ? BiasedUntiedMha : SyntheticShape.TinyQwen3;
        SyntheticCheckpoint.Write(dir.Path, shape, type, seed: 21);
        var reference = ReferenceForward.Logits(ReferenceModel.FromCheckpoint(dir.Path), Ids);
        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 2 });
        Assert.Equal("qwen3", model.Config.ModelType);
        Assert.Equal(32, model.Config.HeadDim);
        Assert.Equal(biasedUntiedMha, model.Config.AttentionBias);

        var whole = model.Forward(Ids);
        PastKeyValues? cache = null;
        for (int p = 0; p < Ids.Length; p++)
        {
            var step = model.Forward(Ids.AsSpan(p, 1), cache, useCache: true);
            cache = step.PastKeyValues;
            AssertClose(reference[p], whole[p], $"{type} position {p} without cache");
            AssertClose(reference[p], step.Logits[0], $"{type} position {p} with the cache");
        }
    }

    [Fact]
    public void Greedy_tokens_equal_the_references()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.TinyQwen3, WeightType.F32, seed: 22);
        var refModel = ReferenceModel.FromCheckpoint(dir.Path);
        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 2 });
        var sequence = new List<int>(Ids);
        var output = model.Forward(sequence.ToArray(), null, useCache: true, LogitsSelection.Last);
        for (int s = 0; s < 8; s++)
        {
            int next = output.Logits.ArgMax(0);
            var all = ReferenceForward.Logits(refModel, sequence);
            Assert.Equal(ReferenceForward.ArgMax(all[^1]), next);
            sequence.Add(next);
            output = model.Forward([next], output.PastKeyValues, useCache: true, LogitsSelection.Last);
        }
    }

    [Fact]
    public void Quantized_at_load_it_stays_near_the_float_model()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.TinyQwen3, WeightType.F32, seed: 23);
        using var floats = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 2 });
        using var q8 = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 2, Quantize = WeightType.Q8_0 });
        var a = floats.Forward(Ids);
        var b = q8.Forward(Ids);
        double diff = 0, scale = 0;
        for (int p = 0; p < Ids.Length; p++)
            for (int j = 0; j < a.VocabSize; j++)
            {
                diff = Math.Max(diff, Math.Abs(a[p][j] - b[p][j]));
                scale = Math.Max(scale, Math.Abs(a[p][j]));
            }
        Assert.True(diff > 0, "Q8_0 weights gave the float logits exactly: the quantized matrices were not used");
        Assert.True(diff <= 0.05 * scale, $"Q8_0 logits are {diff} from the float model's (max |logit| {scale})");
    }

    [Fact]
    public void Attention_bias_untied_multi_head_matches_the_reference_from_safetensors_and_gguf()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, BiasedUntiedMha, WeightType.F32, seed: 24);
        TinyChatModel.CopyTokenizer(dir.Path);
        var reference = ReferenceForward.Logits(ReferenceModel.FromCheckpoint(dir.Path), Ids);
        using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 2 });
        Assert.Equal((true, true, false), (model.Config.AttentionBias, model.Config.OProjBias, model.Config.TieWordEmbeddings));
        var whole = model.Forward(Ids);
        for (int p = 0; p < Ids.Length; p++) AssertClose(reference[p], whole[p], $"safetensors position {p}");

        // GGUF keeps the four biases (attn_output.bias too) and reads them back.
        string gguf = dir.File("model.gguf");
        GgufExporter.Export(dir.Path, gguf, GgufFileType.F32);
        using var fromGguf = Qwen2Model.Load(gguf, new ModelOptions { Threads = 2 });
        Assert.Equal((true, true), (fromGguf.Config.AttentionBias, fromGguf.Config.OProjBias));
        var g = fromGguf.Forward(Ids);
        for (int p = 0; p < Ids.Length; p++) AssertClose(reference[p], g[p], $"GGUF position {p}");
    }

    [Theory]
    [InlineData(GgufFileType.F32)]
    [InlineData(GgufFileType.Q8_0)]
    [InlineData(GgufFileType.Q4_K_M)]
    public void Gguf_qwen3_export_loads_in_the_engine_and_in_llama_cpp(GgufFileType type)
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.TinyQwen3, WeightType.F32, seed: 25);
        TinyChatModel.CopyTokenizer(dir.Path);
        string path = dir.File("model.gguf");
        GgufExporter.Export(dir.Path, path, type);
        var g = GgufTests.GgufFile.Read(path); // the tests' own GGUF reader, not the engine's
        Assert.Equal((GgufMetadataType.String, (object)"qwen3"), g.Kv["general.architecture"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)32u), g.Kv["qwen3.attention.key_length"]);
        Assert.Contains("blk.1.attn_k_norm.weight", g.Tensors.Keys);
        Assert.DoesNotContain(g.Tensors.Keys, k => k.EndsWith(".bias", StringComparison.Ordinal));

        using var fromGguf = Qwen2Model.Load(path, new ModelOptions { Threads = 2 });
        Assert.Equal(("qwen3", 32, true, false), (fromGguf.Config.ModelType, fromGguf.Config.HeadDim, fromGguf.Config.QkNorm, fromGguf.Config.AttentionBias));
        var ours = fromGguf.Forward(Ids);
        // Independent of our loader: the float64 reference on the file's dequantized weights, and llama.cpp on the file.
        var reference = ReferenceForward.Logits(ReferenceModel.FromGguf(path), Ids);
        var llama = LlamaCpp.Logits(path, Ids);
        double toReference = 0, toLlama = 0, llamaToReference = 0;
        for (int p = 0; p < Ids.Length; p++)
            for (int j = 0; j < ours.VocabSize; j++)
            {
                toReference = Math.Max(toReference, Math.Abs(ours[p][j] - reference[p][j]));
                toLlama = Math.Max(toLlama, Math.Abs(ours[p][j] - llama[p][j]));
                llamaToReference = Math.Max(llamaToReference, Math.Abs(llama[p][j] - reference[p][j]));
            }
        if (type == GgufFileType.F32)
        {
            Assert.True(toReference <= 1e-4, $"F32 GGUF: {toReference:G3} from the float64 reference");
            Assert.True(toLlama <= 1e-3, $"F32 GGUF: {toLlama:G3} from llama.cpp");
        }
        else
        {
            // Both engines round activations for their integer dot products: ours may be no further from the
            // reference on the file's own weights than twice llama.cpp is.
            Assert.True(toReference <= 2 * llamaToReference, $"{type}: ours {toReference:G3} from the reference, llama.cpp {llamaToReference:G3}");
        }
    }

    private static void AssertClose(double[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int j = 0; j < expected.Length; j++) worst = Math.Max(worst, Math.Abs(expected[j] - actual[j]));
        Assert.True(worst <= 1e-4, $"{what}: {worst:G3} from the float64 reference (limit 1e-4)");
    }
}
