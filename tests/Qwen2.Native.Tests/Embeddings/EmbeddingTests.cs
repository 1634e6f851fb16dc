using Microsoft.Extensions.AI;
using Qwen2.Kernels;
using Qwen2.Native.Embeddings;
using Qwen2.Native.Generation;
using Qwen2.Native.Gguf;
using Qwen2.Native.Text;
using Qwen2.Reference;
using Qwen2.Native.Tests.Tokenizer;

namespace Qwen2.Native.Tests.Embeddings;

/// <summary>
/// Qwen3-Embedding through <see cref="Qwen2EmbeddingGenerator"/>: checkpoints laid out as the real ones ship, embeddings
/// against the float64 reference's (last token, final norm, L2 normalisation, sentence-transformers' pipeline written
/// on its own in ReferenceForward.Embedding) and against llama.cpp's pooled embeddings of the exported GGUF.
/// </summary>
public class EmbeddingTests(TinyQwen3EmbeddingModel tiny) : IClassFixture<TinyQwen3EmbeddingModel>
{
    private static readonly string[] Texts =
    [
        "What is the capital of China?",
        "The capital of China is Beijing.",
        "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects and is responsible for the movement of planets around the sun.",
        "",
        "日本の首都は東京です。",
    ];

    private const int EndOfText = 151643;

    public static TheoryData<WeightType> Types => new() { WeightType.F32, WeightType.BF16, WeightType.F16 };

    [Theory, MemberData(nameof(Types))]
    public async Task Embeddings_equal_the_references_for_every_weight_type(WeightType type)
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.TinyQwen3Embedding, type, seed: 31);
        TinyChatModel.CopyTokenizer(dir.Path, "qwen3");
        SyntheticCheckpoint.AddEmbeddingTemplate(dir.File("tokenizer.json"));
        using var pipeline = Qwen2Pipeline.FromPretrained(dir.Path, new ModelOptions { Threads = 2 });
        Assert.True(pipeline.Model.IsEmbeddingModel);
        // A small batch budget: the texts go in several batches, and the long one in chunks through a cache.
        using var generator = new Qwen2EmbeddingGenerator(pipeline, batchTokens: 16);
        var result = await generator.GenerateAsync(Texts);

        var reference = ReferenceModel.FromCheckpoint(dir.Path);
        Assert.Equal(Texts.Length, result.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            var ids = generator.Tokenize(Texts[i]);
            Assert.Equal(EndOfText, ids[^1]);
            AssertEqualToReference(ReferenceForward.Embedding(reference, ids), result[i].Vector.Span, $"{type} text {i}");
        }
        Assert.Equal(Texts.Sum(t => (long)generator.Tokenize(t).Length), result.Usage!.InputTokenCount);
        Assert.True(generator.Tokenize(Texts[2]).Length > 16, "the long text must take the chunked path");
    }

    [Fact]
    public void An_untied_config_without_a_head_loads_as_qwen3_embedding_8b_ships()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.TinyQwen3Embedding with { TieWordEmbeddings = false }, WeightType.BF16, seed: 33);
        TinyChatModel.CopyTokenizer(dir.Path, "qwen3");
        SyntheticCheckpoint.AddEmbeddingTemplate(dir.File("tokenizer.json"));
        using var pipeline = Qwen2Pipeline.FromPretrained(dir.Path, new ModelOptions { Threads = 2 });
        Assert.False(pipeline.Model.Config.TieWordEmbeddings);
        using var generator = new Qwen2EmbeddingGenerator(pipeline);
        var ids = generator.Tokenize(Texts[0]);
        AssertEqualToReference(ReferenceForward.Embedding(ReferenceModel.FromCheckpoint(dir.Path), ids), generator.Embed([ids])[0], "untied");
    }

    [Fact]
    public void A_batch_gives_each_text_what_it_gets_alone()
    {
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var ids = Texts.Select(generator.Tokenize).ToArray();
        var together = generator.Embed(ids);
        for (int i = 0; i < ids.Length; i++)
        {
            var alone = generator.Embed([ids[i]])[0];
            for (int j = 0; j < alone.Length; j++) Assert.True(Math.Abs(alone[j] - together[i][j]) <= 1e-6, $"text {i} value {j}: {alone[j]} alone, {together[i][j]} batched");
        }
    }

    [Fact]
    public async Task Dimensions_truncate_and_normalise_again()
    {
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var reference = ReferenceModel.FromCheckpoint(tiny.Directory);
        var result = await generator.GenerateAsync([Texts[1]], new EmbeddingGenerationOptions { Dimensions = 32 });
        Assert.Equal(32, result[0].Vector.Length);
        AssertEqualToReference(ReferenceForward.Embedding(reference, generator.Tokenize(Texts[1]), dimensions: 32), result[0].Vector.Span, "32 dimensions");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => generator.GenerateAsync([Texts[1]], new EmbeddingGenerationOptions { Dimensions = 65 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => generator.GenerateAsync([Texts[1]], new EmbeddingGenerationOptions { Dimensions = 0 }));
    }

    [Fact]
    public async Task The_query_prompt_comes_from_the_sentence_transformers_config()
    {
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        Assert.Equal(SyntheticCheckpoint.QueryPrompt, generator.Prompts["query"]);
        Assert.Equal(Qwen2EmbeddingGenerator.FormatQuery("Given a web search query, retrieve relevant passages that answer the query", "x"),
            generator.Prompts["query"] + "x");
        var options = new EmbeddingGenerationOptions { AdditionalProperties = new() { ["prompt_name"] = "query" } };
        var withPrompt = await generator.GenerateAsync([Texts[0]], options);
        var spelledOut = await generator.GenerateAsync([generator.Prompts["query"] + Texts[0]]);
        Assert.Equal(spelledOut[0].Vector.ToArray(), withPrompt[0].Vector.ToArray());
        var plain = await generator.GenerateAsync([Texts[0]]);
        Assert.NotEqual(plain[0].Vector.ToArray(), withPrompt[0].Vector.ToArray());

        var unknown = await Assert.ThrowsAsync<ArgumentException>(() =>
            generator.GenerateAsync([Texts[0]], new EmbeddingGenerationOptions { AdditionalProperties = new() { ["prompt_name"] = "passage" } }));
        Assert.Contains("query", unknown.Message);
    }

    [Fact]
    public void Inputs_the_model_cannot_take_are_refused_with_their_index()
    {
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var tooLong = new int[generator.MaxInputTokens + 1];
        var e = Assert.Throws<ArgumentException>(() => generator.Embed([[1, 2], tooLong]));
        Assert.Contains("input 1", e.Message);
        Assert.Contains($"{generator.MaxInputTokens}", e.Message);
        Assert.Contains("input 0", Assert.Throws<ArgumentException>(() => generator.Embed([[]])).Message);
    }

    [Fact]
    public void The_embedding_model_maps_no_head_and_refuses_logits()
    {
        var model = tiny.Model;
        Assert.True(model.IsEmbeddingModel);
        Assert.DoesNotContain(model.Tensors, t => t.Tensor.Name.Contains("lm_head", StringComparison.Ordinal));
        Assert.Contains(model.Tensors, t => t.Tensor.Name == "embed_tokens.weight");
        var e = Assert.Throws<InvalidOperationException>(() => model.Forward([1, 2, 3]));
        Assert.Contains("embedding model", e.Message);
        // Decode reads one embedding row, not the whole (tied) matrix it would read as a head.
        long embed = (long)model.Config.VocabSize * model.Config.HiddenSize * 2;
        Assert.Equal(model.WeightBytes - embed + model.Config.HiddenSize * 2, model.DecodeBytesPerToken);
    }

    [Fact]
    public void The_tokenizer_appends_end_of_text_as_hugging_face_does()
    {
        var hf = new Oracle(tiny.Directory + "/tokenizer.json");
        foreach (var text in Texts)
        {
            var ours = tiny.Tokenizer.Encode(text, addSpecialTokens: true);
            Assert.Equal(hf.Encode(text), ours);
            Assert.Equal(tiny.Tokenizer.Encode(text), ours[..^1]);
        }
        Assert.Equal([EndOfText], tiny.Tokenizer.SpecialSuffix);
        Assert.Empty(tiny.Tokenizer.SpecialPrefix);
    }

    [Fact]
    public void Pooling_the_engine_does_not_compute_is_refused_naming_the_file_and_field()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.TinyQwen3Embedding, WeightType.BF16, seed: 32);
        string pooling = Path.Combine(dir.Path, "1_Pooling", "config.json");
        File.WriteAllText(pooling, File.ReadAllText(pooling).Replace("\"pooling_mode_mean_tokens\": false", "\"pooling_mode_mean_tokens\": true").Replace("\"pooling_mode_lasttoken\": true", "\"pooling_mode_lasttoken\": false"));
        var e = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(dir.Path));
        Assert.Contains(pooling, e.Message);
        Assert.Contains("pooling_mode_mean_tokens", e.Message);

        File.WriteAllText(Path.Combine(dir.Path, "modules.json"), """[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]""");
        var dense = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(dir.Path));
        Assert.Contains("sentence_transformers.models.Dense", dense.Message);
        Assert.Contains("modules.json", dense.Message);
    }

    [Theory]
    [InlineData(GgufFileType.F32)]
    [InlineData(GgufFileType.Q8_0)]
    public void Gguf_export_is_an_embedding_model_in_the_engine_and_in_llama_cpp(GgufFileType type)
    {
        string path = Path.Combine(tiny.Directory, $"embedding-{type}.gguf");
        if (!File.Exists(path)) GgufExporter.Export(tiny.Directory, path, type);
        var g = GgufTests.GgufFile.Read(path); // the tests' own GGUF reader, not the engine's
        Assert.Equal((GgufMetadataType.UInt32, (object)3u), g.Kv["qwen3.pooling_type"]);
        Assert.Equal((GgufMetadataType.Bool, (object)true), g.Kv["tokenizer.ggml.add_eos_token"]);
        Assert.Equal((GgufMetadataType.UInt32, (object)(uint)EndOfText), g.Kv["tokenizer.ggml.eos_token_id"]);
        Assert.DoesNotContain("output.weight", g.Tensors.Keys);

        using var pipeline = Qwen2Pipeline.FromPretrained(path, new ModelOptions { Threads = 2 });
        Assert.True(pipeline.Model.IsEmbeddingModel);
        using var generator = new Qwen2EmbeddingGenerator(pipeline);
        var reference = ReferenceModel.FromGguf(path); // the file's dequantized weights
        double ours = 0, llama = 0;
        foreach (var text in Texts)
        {
            var ids = generator.Tokenize(text);
            Assert.Equal(tiny.Tokenizer.Encode(text, addSpecialTokens: true), ids);
            var expected = ReferenceForward.Embedding(reference, ids);
            var mine = generator.Embed([ids])[0];
            var peer = LlamaCpp.Embedding(path, ids);
            ours = Math.Max(ours, MaxDiff(expected, mine));
            llama = Math.Max(llama, MaxDiff(expected, peer));
            Assert.True(Cosine(expected, peer) >= 0.9999, $"{type}: llama.cpp's embedding is not the reference's (cosine {Cosine(expected, peer)})");
            if (type == GgufFileType.F32) AssertEqualToReference(expected, mine, $"F32 GGUF, {text}");
        }
        // Quantized: both engines round activations for their integer dot products; ours may be no further from the
        // reference on the file's own weights than twice llama.cpp is.
        if (type != GgufFileType.F32) Assert.True(ours <= 2 * llama, $"{type}: ours {ours:G3} from the reference, llama.cpp {llama:G3}");
    }

    private static double MaxDiff(double[] expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int j = 0; j < expected.Length; j++) worst = Math.Max(worst, Math.Abs(expected[j] - actual[j]));
        return worst;
    }

    private static double Cosine(double[] a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int j = 0; j < a.Length; j++) { dot += a[j] * b[j]; na += a[j] * a[j]; nb += (double)b[j] * b[j]; }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>Within 1e-4 of the reference at every value, cosine at least 0.99999, and of unit length.</summary>
    internal static void AssertEqualToReference(double[] expected, ReadOnlySpan<float> actual, string what)
    {
        double worst = MaxDiff(expected, actual), cosine = Cosine(expected, actual), norm = 0;
        foreach (float x in actual) norm += (double)x * x;
        Assert.True(worst <= 1e-4, $"{what}: {worst:G3} from the float64 reference (limit 1e-4)");
        Assert.True(cosine >= 0.99999, $"{what}: cosine {cosine} with the reference (limit 0.99999)");
        Assert.True(Math.Abs(Math.Sqrt(norm) - 1) <= 1e-5, $"{what}: norm {Math.Sqrt(norm)}");
    }
}
