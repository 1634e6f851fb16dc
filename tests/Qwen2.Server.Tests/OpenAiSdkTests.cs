using System.ClientModel;
using System.Text;
using Microsoft.Extensions.AI;
using OpenAI.Chat;
using OpenAI.Models;
using Qwen2.Native.Tests;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using ChatMessage = OpenAI.Chat.ChatMessage;
using Msg = Qwen2.Native.Text.ChatMessage;

namespace Qwen2.Server.Tests;

/// <summary>
/// Clients this project did not write (the official OpenAI .NET SDK and Microsoft.Extensions.AI's OpenAI chat client)
/// against the in-process server: what they read equals the same request generated without the server.
/// </summary>
public sealed class OpenAiSdkTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private const string Question = "Name three colors.";
    private static readonly Qwen2ServerOptions Options = new() { Alias = "tiny-chat" };

    private (string Text, int[] Ids, string FinishReason) Expected(Native.Generation.SamplingOptions sampling, int max) =>
        Reference.Generate(tiny.Pipeline, Reference.ChatPrompt(tiny.Pipeline, Msg.User(Question)), sampling, max);

    [Fact]
    public async Task ModelsListTheAlias()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        var models = (await new OpenAIModelClient(new ApiKeyCredential("k"), host.Options()).GetModelsAsync()).Value;
        var model = Assert.Single(models);
        Assert.Equal("tiny-chat", model.Id);
        Assert.Equal("qwen2managed", model.OwnedBy);
    }

    [Fact]
    public async Task ChatCompletionEqualsTheRequestAloneWithUsageAndLength()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        var expected = Expected(Reference.Greedy(tiny.Pipeline), 9);
        var result = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage(Question)],
            new ChatCompletionOptions { MaxOutputTokenCount = 9, Temperature = 0 })).Value;
        Assert.Equal(expected.Text, result.Content.Count == 0 ? "" : result.Content[0].Text);
        Assert.Equal(expected.FinishReason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop, result.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, result.Role);
        Assert.Equal("tiny-chat", result.Model);
        Assert.StartsWith("chatcmpl-", result.Id);
        int promptTokens = Reference.ChatPrompt(tiny.Pipeline, Msg.User(Question)).Length;
        Assert.Equal(promptTokens, result.Usage.InputTokenCount);
        Assert.Equal(expected.Ids.Length, result.Usage.OutputTokenCount);
        Assert.Equal(promptTokens + expected.Ids.Length, result.Usage.TotalTokenCount);
        Assert.Equal(0, result.Usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public async Task StreamingGivesTheSameTextOneIdAndUsage()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        var expected = Expected(Reference.Greedy(tiny.Pipeline), 12);
        var text = new StringBuilder();
        var ids = new HashSet<string>();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int roles = 0;
        await foreach (var update in host.Chat().CompleteChatStreamingAsync([ChatMessage.CreateUserMessage(Question)],
            new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 }))
        {
            ids.Add(update.CompletionId);
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            if (update.Role is not null) roles++;
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(expected.Text, text.ToString());
        Assert.Single(ids);
        Assert.Equal(1, roles);
        Assert.Equal(expected.FinishReason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop, finish);
        Assert.NotNull(usage); // the SDK asks for include_usage when it streams
        Assert.Equal(expected.Ids.Length, usage.OutputTokenCount);
    }

    [Fact]
    public async Task SeededRequestsRepeatAndEqualTheRequestAlone()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        var expected = Expected(Reference.Seeded(42), 10);
        // The SDK has no top_k, min_p or repetition_penalty: the seeded request is sent as JSON with every filter named.
        string body = $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"{Question}\"}}],\"max_tokens\":10,{Reference.SeededJson(42)}}}";
        async Task<string> Content()
        {
            var response = await host.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(200, (int)response.StatusCode);
            return Sse.Parse(await response.Content.ReadAsStringAsync()).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        }
        string first = await Content();
        Assert.Equal(expected.Text, first);
        Assert.Equal(first, await Content());
        var other = Reference.Generate(tiny.Pipeline, Reference.ChatPrompt(tiny.Pipeline, Msg.User(Question)), Reference.Seeded(43), 10);
        Assert.NotEqual(expected.Ids, other.Ids); // the seed matters: the test above could not pass by ignoring it
    }

    [Fact]
    public async Task SdkSeedGivesTheSameReplyTwice()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0.9f, Seed = 7 };
#pragma warning restore OPENAI001
        var a = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage(Question)], options)).Value;
        var b = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage(Question)], options)).Value;
        Assert.Equal(a.Content[0].Text, b.Content[0].Text);
    }

    [Fact]
    public async Task StopStringEndsTheReplyBeforeIt()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        var full = Expected(Reference.Greedy(tiny.Pipeline), 16).Text;
        Assert.True(full.Length >= 4, $"the greedy reply is too short to pick a stop string from: \"{full}\"");
        string stop = full.Substring(full.Length / 2, 2);
        var result = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage(Question)],
            new ChatCompletionOptions { MaxOutputTokenCount = 16, Temperature = 0, StopSequences = { stop } })).Value;
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], result.Content.Count == 0 ? "" : result.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, result.FinishReason);
    }

    [Fact]
    public async Task MicrosoftExtensionsAiClientStreamsAndAnswers()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        IChatClient client = host.Chat().AsIChatClient();
        var expected = Expected(Reference.Greedy(tiny.Pipeline), 8);
        var options = new ChatOptions { MaxOutputTokens = 8, Temperature = 0 };
        var response = await client.GetResponseAsync([new AiChatMessage(ChatRole.User, Question)], options);
        Assert.Equal(expected.Text, response.Text);
        Assert.Equal(expected.FinishReason, response.FinishReason?.Value);
        Assert.Equal(expected.Ids.Length, response.Usage?.OutputTokenCount);

        var streamed = new StringBuilder();
        await foreach (var update in client.GetStreamingResponseAsync([new AiChatMessage(ChatRole.User, Question)], options)) streamed.Append(update.Text);
        Assert.Equal(expected.Text, streamed.ToString());
    }

    [Fact]
    public async Task ConversationWithSystemAndAssistantTurns()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        var prompt = Reference.ChatPrompt(tiny.Pipeline, Msg.System("Be brief."), Msg.User("Hi"), Msg.Assistant("Hello."), Msg.User(Question));
        var expected = Reference.Generate(tiny.Pipeline, prompt, Reference.Greedy(tiny.Pipeline), 6);
        var result = (await host.Chat().CompleteChatAsync(
            [ChatMessage.CreateSystemMessage("Be brief."), ChatMessage.CreateUserMessage("Hi"), ChatMessage.CreateAssistantMessage("Hello."), ChatMessage.CreateUserMessage(Question)],
            new ChatCompletionOptions { MaxOutputTokenCount = 6, Temperature = 0 })).Value;
        Assert.Equal(expected.Text, result.Content.Count == 0 ? "" : result.Content[0].Text);
        Assert.Equal(prompt.Length, result.Usage.InputTokenCount);
    }

    [Fact]
    public async Task ASecondRequestSharingTheSystemPromptReusesItsBlocks()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, Options);
        string system = string.Join(" ", Enumerable.Repeat("You answer questions about colors, briefly and exactly.", 6));
        var settings = new ChatCompletionOptions { MaxOutputTokenCount = 6, Temperature = 0 };
        var first = (await host.Chat().CompleteChatAsync([ChatMessage.CreateSystemMessage(system), ChatMessage.CreateUserMessage("Name one.")], settings)).Value;
        Assert.Equal(0, first.Usage.InputTokenDetails.CachedTokenCount);

        var second = (await host.Chat().CompleteChatAsync([ChatMessage.CreateSystemMessage(system), ChatMessage.CreateUserMessage(Question)], settings)).Value;
        int[] a = Reference.ChatPrompt(tiny.Pipeline, Msg.System(system), Msg.User("Name one.")), b = Reference.ChatPrompt(tiny.Pipeline, Msg.System(system), Msg.User(Question));
        int common = 0;
        while (common < Math.Min(a.Length, b.Length - 1) && a[common] == b[common]) common++;
        int block = host.Engine.Generator!.Cache.Pool.BlockSize;
        Assert.True(common >= 2 * block, $"the prompts share only {common} tokens");
        // Whole blocks of the shared prefix come from the first request's cache.
        Assert.Equal(common / block * block, second.Usage.InputTokenDetails.CachedTokenCount);
        var expected = Reference.Generate(tiny.Pipeline, b, Reference.Greedy(tiny.Pipeline), 6);
        Assert.Equal(expected.Text, second.Content.Count == 0 ? "" : second.Content[0].Text);
        Assert.Equal(0, host.Engine.Generator.Cache.Pool.BlocksInUse);
    }
}
