using System.Text.Json.Nodes;
using Qwen2.Kernels;
using Qwen2.Native.Chat;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// <see cref="Qwen2Pipeline"/>: one call loads the model, tokenizer, template and generation defaults, and every
/// generator over the model (session, chat, batch) sees the same defaults.
/// </summary>
public class PipelineTests
{
    /// <summary>A synthesized tiny checkpoint with the Qwen2.5 tokenizer and, when given, this generation_config.json.</summary>
    private static TempDir Checkpoint(string? generationConfig = null)
    {
        var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16, seed: 11);
        TinyChatModel.CopyTokenizer(dir.Path);
        if (generationConfig is not null) File.WriteAllText(dir.File("generation_config.json"), generationConfig);
        return dir;
    }

    [Fact]
    public void FromPretrainedLoadsModelTokenizerTemplateAndDefaults()
    {
        using var dir = Checkpoint(); // the synthesizer writes Qwen2.5-Instruct's generation_config.json
        Qwen2Model model;
        using (var pipeline = Qwen2Pipeline.FromPretrained(dir.Path, new ModelOptions { Threads = 1 }))
        {
            model = pipeline.Model;
            Assert.Equal(dir.Path, model.Directory);
            Assert.Equal(1, model.Options.Threads);
            Assert.Equal(Qwen2Tokenizer.Load(dir.Path).Encode("Hello, world"), pipeline.Tokenizer.Encode("Hello, world"));
            Assert.Equal(ChatTemplateFamily.Qwen25, pipeline.ChatTemplate.Family);
            Assert.Same(pipeline.ChatTemplate, pipeline.ChatTemplate);

            var g = pipeline.GenerationConfig;
            Assert.Equal((true, 0.7, 20, 0.8, 1.05, 151643), (g.DoSample, g.Temperature, g.TopK, g.TopP, g.RepetitionPenalty, g.BosTokenId));
            Assert.Equal([151645, 151643], g.EosTokenIds);
            Assert.Equal(new SamplingOptions { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.05 }, pipeline.DefaultOptions.Sampling);
            Assert.Equal(GenerationOptions.FromConfig(GenerationConfig.Load(dir.Path)), pipeline.DefaultOptions);
            // generation_config.json's eos ids, then config.json's (151645 again), without repeats.
            Assert.Equal([151645], model.Config.EosTokenIds);
            Assert.Equal([151645, 151643], pipeline.DefaultStopTokenIds);
            Assert.Equal([151645, 151643], pipeline.TextStopTokenIds); // the tokenizer's eos, <|im_end|>, is one of them
            Assert.NotEmpty(model.Forward([1, 2, 3], logits: LogitsSelection.Last).Logits.Last.ToArray());
        }
        // The pipeline loaded the model, so it disposed it.
        Assert.Throws<ObjectDisposedException>(() => model.Forward([1, 2, 3]));
    }

    [Fact]
    public void APipelineOverALoadedModelLeavesItToItsOwner()
    {
        using var dir = Checkpoint("""{"eos_token_id": 7, "do_sample": false}""");
        using var model = Qwen2Model.Load(dir.Path);
        var tokenizer = Qwen2Tokenizer.Load(dir.Path);
        var pipeline = new Qwen2Pipeline(model, tokenizer);
        Assert.Same(model, pipeline.Model);
        Assert.Same(tokenizer, pipeline.Tokenizer);
        Assert.Equal([7, 151645], pipeline.DefaultStopTokenIds);
        Assert.Equal([7, 151645], pipeline.TextStopTokenIds);
        Assert.True(pipeline.DefaultOptions.Sampling.IsGreedy);
        pipeline.Dispose();
        Assert.NotEmpty(model.Forward([1, 2, 3], logits: LogitsSelection.Last).Logits.Last.ToArray());
        Assert.Throws<ArgumentNullException>(() => new Qwen2Pipeline(null!, tokenizer));
        Assert.Throws<ArgumentNullException>(() => new Qwen2Pipeline(model, null!));
    }

    [Fact]
    public void SessionsChatsAndBatchesShareTheDefaults()
    {
        // Greedy with a repetition penalty and a short limit: deterministic, and unlike plain greedy decoding.
        using var dir = Checkpoint("""{"eos_token_id": [151643], "do_sample": false, "repetition_penalty": 1.5, "max_new_tokens": 5}""");
        using var pipeline = Qwen2Pipeline.FromPretrained(dir.Path);
        var defaults = pipeline.DefaultOptions;
        Assert.Equal(5, defaults.MaxNewTokens);
        Assert.Equal(SamplingOptions.Greedy with { RepetitionPenalty = 1.5 }, defaults.Sampling);

        var session = new InferenceSession(pipeline.Model);
        Assert.Same(defaults, session.DefaultOptions);
        Assert.Equal(pipeline.DefaultStopTokenIds, session.DefaultStopTokenIds);
        var chat = new ChatSession(pipeline);
        using var generator = new BatchGenerator(pipeline);
        Assert.Same(pipeline, generator.Pipeline);
        Assert.Same(defaults, generator.DefaultOptions);
        Assert.Equal(pipeline.DefaultStopTokenIds, generator.DefaultStopTokenIds);
        using var client = new Qwen2ChatClient(pipeline);
        Assert.Same(defaults, client.DefaultOptions);
        Assert.Same(pipeline, client.GetService(typeof(Qwen2Pipeline)));

        // No options: each one generates as with the defaults given explicitly.
        int[] prompt = pipeline.Tokenizer.Encode("Once upon a time");
        var tokens = session.Generate(prompt).ToArray();
        Assert.Equal(new InferenceSession(pipeline.Model).Generate(prompt, defaults).ToArray(), tokens);
        Assert.True(tokens.Length <= 5, $"{tokens.Length} tokens");
        var request = generator.Submit(prompt);
        Assert.Same(defaults, request.Options);
        generator.RunToCompletion();
        Assert.Equal(tokens, request.Generated);
        Assert.NotEqual(new InferenceSession(pipeline.Model).Generate(prompt, new GenerationOptions { MaxNewTokens = 5 }).ToArray(), tokens); // not plain greedy

        string reply = string.Concat(chat.Send("Hi"));
        var explicitChat = new ChatSession(pipeline);
        Assert.Equal(string.Concat(explicitChat.Send("Hi", defaults)), reply);
        Assert.Equal(explicitChat.Session.Tokens, chat.Session.Tokens);
        Assert.InRange(chat.LastStats!.GeneratedTokens, 1, 5);
        string text = string.Concat(new InferenceSession(pipeline.Model).GenerateText(pipeline.Tokenizer, "Once upon a time"));
        Assert.Equal(pipeline.Tokenizer.Decode(tokens, skipSpecialTokens: true), text);
    }

    [Fact]
    public void ATokenizerWithoutAChatTemplateLoadsAndRefusesChatOnly()
    {
        using var dir = Checkpoint();
        var config = JsonNode.Parse(File.ReadAllText(dir.File(Qwen2Tokenizer.TokenizerConfigFile)))!.AsObject();
        Assert.True(config.Remove("chat_template"));
        File.WriteAllText(dir.File(Qwen2Tokenizer.TokenizerConfigFile), config.ToJsonString());
        using var pipeline = Qwen2Pipeline.FromPretrained(dir.Path);
        var e = Assert.Throws<NotSupportedException>(() => pipeline.ChatTemplate);
        Assert.Contains("chat_template", e.Message, StringComparison.Ordinal);
        Assert.Equal(e.Message, Assert.Throws<NotSupportedException>(() => new ChatSession(pipeline)).Message);
        Assert.Throws<NotSupportedException>(() => new Qwen2ChatClient(pipeline));
        // A template given explicitly still works, and raw text needs none.
        Assert.Same(ChatTemplate.Qwen25, new ChatSession(pipeline, new ChatSessionOptions { Template = ChatTemplate.Qwen25 }).Template);
        Assert.NotEmpty(new InferenceSession(pipeline.Model).GenerateText(pipeline.Tokenizer, "abc", new GenerationOptions { MaxNewTokens = 3, IgnoreEos = true }).ToList());
    }

    [Fact]
    public void FromPretrainedReportsAMissingTokenizerAndAMissingCheckpoint()
    {
        using var dir = Checkpoint();
        File.Delete(dir.File(Qwen2Tokenizer.TokenizerJsonFile));
        Assert.Contains(Qwen2Tokenizer.TokenizerJsonFile, Assert.Throws<CheckpointException>(() => Qwen2Pipeline.FromPretrained(dir.Path)).Message);
        Assert.Throws<ModelNotFoundException>(() => Qwen2Pipeline.FromPretrained(dir.File("no-such-checkpoint")));
    }

    [Fact]
    public async Task ReadingTextNeedsAGeneratorMadeFromAPipeline()
    {
        using var dir = Checkpoint();
        using var model = Qwen2Model.Load(dir.Path);
        using var generator = new BatchGenerator(model);
        Assert.Null(generator.Pipeline);
        var request = generator.Submit([1, 2, 3], new GenerationOptions { MaxNewTokens = 2, IgnoreEos = true });
        var e = Assert.Throws<InvalidOperationException>(() => request.ReadTextAsync());
        Assert.Contains("Qwen2Pipeline", e.Message, StringComparison.Ordinal);
        generator.RunToCompletion();
        Assert.Equal(2, (await request.Completion).GeneratedTokens);
    }
}
