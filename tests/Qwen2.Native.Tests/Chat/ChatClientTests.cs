using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen2.Native.Tests;

/// <summary><see cref="Qwen2ChatClient"/> on a synthesized tiny checkpoint with the real Qwen2.5 tokenizer.</summary>
public class ChatClientTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private Qwen2ChatClient Client() => new(tiny.Pipeline);

    private static ChatOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokens = max };

    private static List<AIChatMessage> Conversation(params string[] turns) =>
        turns.Select((t, i) => new AIChatMessage(i % 2 == 0 ? ChatRole.User : ChatRole.Assistant, t)).ToList();

    [Fact]
    public async Task NonStreamingEqualsTheConcatenatedStream()
    {
        using var client = Client();
        var messages = Conversation("Tell me about the sea.");
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, Greedy(12))) updates.Add(u);
        var response = await client.GetResponseAsync(messages, Greedy(12));

        Assert.True(updates.Count > 2, $"expected the text in several updates, got {updates.Count}");
        Assert.Equal(string.Concat(updates.Select(u => u.Text)), response.Text);
        Assert.NotEmpty(response.Text);
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        // Only the last update says why it ended and carries the usage.
        Assert.All(updates[..^1], u => Assert.Null(u.FinishReason));
        var usage = Assert.Single(updates[^1].Contents.OfType<UsageContent>()).Details;
        Assert.Equal(updates[^1].FinishReason, response.FinishReason);
        Assert.Equal(usage.InputTokenCount, response.Usage!.InputTokenCount);
        Assert.Equal(usage.OutputTokenCount, response.Usage.OutputTokenCount);
        Assert.Single(response.Messages);
        Assert.Equal(ChatRole.Assistant, response.Messages[0].Role);
    }

    [Fact]
    public async Task GreedyReplyEqualsChatSessionsReply()
    {
        var session = new ChatSession(tiny.Pipeline);
        string expected = string.Concat(session.Send("What is a KV cache?", new GenerationOptions { Sampling = SamplingOptions.Greedy, MaxNewTokens = 16 }));

        using var client = Client();
        var response = await client.GetResponseAsync(Conversation("What is a KV cache?"), Greedy(16));
        Assert.Equal(expected, response.Text);
        Assert.Equal(session.LastStats!.GeneratedTokens, response.Usage!.OutputTokenCount);
        Assert.Equal(session.LastStats.PromptTokens, response.Usage.InputTokenCount);
    }

    [Fact]
    public async Task MaxOutputTokensEndsWithLengthAndCountsTheTokens()
    {
        using var client = Client();
        var response = await client.GetResponseAsync(Conversation("Count to ten."), Greedy(5));
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.Equal(response.Usage.InputTokenCount + 5, response.Usage.TotalTokenCount);

        var none = await client.GetResponseAsync(Conversation("Count to ten."), Greedy(0));
        Assert.Equal("", none.Text);
        Assert.Equal(0, none.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, none.FinishReason);
    }

    [Fact]
    public async Task AStopSequenceEndsTheReplyBeforeIt()
    {
        using var client = Client();
        var messages = Conversation("Write a long story.");
        string full = (await client.GetResponseAsync(messages, Greedy(24))).Text;
        Assert.True(full.Length >= 6, $"the greedy reply is too short to cut: \"{full}\"");
        string stop = full.Substring(full.Length / 2, 2);
        string expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];

        var options = Greedy(24);
        options.StopSequences = [stop];
        var cut = await client.GetResponseAsync(messages, options);
        Assert.Equal(expected, cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
        Assert.True(cut.Usage!.OutputTokenCount < 24);
    }

    [Fact]
    public async Task TheSameSeedGivesTheSameReplyAndOtherSeedsDiffer()
    {
        using var client = Client();
        var messages = Conversation("Surprise me.");
        ChatOptions Sampled(long seed) => new() { Temperature = 1, TopK = 0, TopP = 1, Seed = seed, MaxOutputTokens = 10 };
        string a = (await client.GetResponseAsync(messages, Sampled(7))).Text;
        using var other = Client();
        string b = (await other.GetResponseAsync(messages, Sampled(7))).Text;
        Assert.Equal(a, b);
        string[] others = [(await client.GetResponseAsync(messages, Sampled(8))).Text, (await client.GetResponseAsync(messages, Sampled(-9))).Text];
        Assert.Contains(others, o => o != a);
    }

    [Fact]
    public async Task AnExtendedConversationReusesTheCacheAndMatchesAFreshClient()
    {
        using var client = Client();
        var first = await client.GetResponseAsync(Conversation("Hello!"), Greedy(8));
        Assert.Equal(0, first.Usage!.CachedInputTokenCount);

        var extended = Conversation("Hello!", first.Text, "And then?");
        var second = await client.GetResponseAsync(extended, Greedy(8));

        // What the cache should give: the run tokens of the first call (its prompt and reply, as ChatSession holds
        // them) as far as they agree with the second prompt's tokens. The reply is re-encoded from its text, and the
        // prompt's closing newline may merge with the reply's first characters, so the agreement can stop early.
        var reference = new ChatSession(tiny.Pipeline);
        Assert.Equal(first.Text, string.Concat(reference.Send("Hello!", new GenerationOptions { Sampling = SamplingOptions.Greedy, MaxNewTokens = 8 })));
        var held = reference.Session.Tokens.Take(reference.Session.ProcessedTokens).ToArray();
        var prompt2 = tiny.Tokenizer.Encode(reference.Template.Render(
            [Text.ChatMessage.User("Hello!"), Text.ChatMessage.Assistant(first.Text), Text.ChatMessage.User("And then?")]));
        int common = held.Zip(prompt2).TakeWhile(p => p.First == p.Second).Count();
        Assert.Equal(prompt2.Length, second.Usage!.InputTokenCount);
        Assert.Equal(common, second.Usage.CachedInputTokenCount);
        Assert.True(common >= first.Usage.InputTokenCount - 1, $"only {common} tokens in common; the first prompt had {first.Usage.InputTokenCount}");

        using var fresh = Client();
        var expected = await fresh.GetResponseAsync(extended, Greedy(8));
        Assert.Equal(0, expected.Usage!.CachedInputTokenCount);
        Assert.Equal(expected.Text, second.Text);
        Assert.Equal(expected.Usage.InputTokenCount, second.Usage.InputTokenCount);

        // Going back to a shorter conversation rewinds to the common prefix and still matches.
        var again = await client.GetResponseAsync(Conversation("Hello!"), Greedy(8));
        Assert.Equal(first.Text, again.Text);
        Assert.True(again.Usage!.CachedInputTokenCount > 0);
    }

    [Fact]
    public async Task CancellationStopsTheStreamAndTheNextCallWorks()
    {
        using var client = Client();
        var messages = Conversation("Go on and on.");
        using var cts = new CancellationTokenSource();
        int updates = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync(messages, Greedy(200), cts.Token))
            {
                updates++;
                cts.Cancel();
            }
        });
        Assert.Equal(1, updates);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(messages, Greedy(4), cts.Token));

        var after = await client.GetResponseAsync(messages, Greedy(6));
        using var fresh = Client();
        Assert.Equal((await fresh.GetResponseAsync(messages, Greedy(6))).Text, after.Text);
    }

    [Fact]
    public async Task NonTextContentAndHostedToolsAreNotSupported()
    {
        using var client = Client();
        var image = new List<AIChatMessage> { new(ChatRole.User, [new DataContent(new byte[] { 1, 2, 3 }, "image/png")]) };
        var e = await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(image));
        Assert.Contains("DataContent", e.Message, StringComparison.Ordinal);

        var withTools = new ChatOptions { Tools = [new HostedWebSearchTool()] };
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(Conversation("Search."), withTools));

        // Refused before anything ran: the client still answers.
        Assert.NotNull((await client.GetResponseAsync(Conversation("Hi"), Greedy(2))).Text);
    }

    [Fact]
    public async Task BadOptionsAndMessagesNameTheArgument()
    {
        using var client = Client();
        var messages = Conversation("Hi");
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(messages, new ChatOptions { Temperature = -1 }));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("temperature", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync(messages, new ChatOptions { MaxOutputTokens = -1 }));
        Assert.Contains("MaxOutputTokens", e.Message, StringComparison.Ordinal);

        var bad = new ChatOptions { AdditionalProperties = new() { ["min_p"] = "lots" } };
        var a = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(messages, bad));
        Assert.Equal("options", a.ParamName);
        Assert.Contains("min_p", a.Message, StringComparison.Ordinal);

        a = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([]));
        Assert.Equal("messages", a.ParamName);
        a = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new(ChatRole.User, "a"), null!]));
        Assert.Equal("messages", a.ParamName);
    }

    [Fact]
    public async Task AdditionalPropertiesReachTheSampler()
    {
        using var client = Client();
        var messages = Conversation("Pick words.");
        // min_p 1 keeps only the most likely token: sampling at any temperature becomes greedy.
        var minP = new ChatOptions { Temperature = 1.5f, Seed = 3, MaxOutputTokens = 8, AdditionalProperties = new() { ["min_p"] = JsonSerializer.SerializeToElement(1.0) } };
        Assert.Equal((await client.GetResponseAsync(messages, Greedy(8))).Text, (await client.GetResponseAsync(messages, minP)).Text);

        // A huge repetition penalty changes the greedy reply of a model that repeats itself (numbers as .NET values work too).
        var plain = await client.GetResponseAsync(messages, Greedy(16));
        var penalized = Greedy(16);
        penalized.AdditionalProperties = new() { ["repetition_penalty"] = 1e6 };
        var penalizedText = (await client.GetResponseAsync(messages, penalized)).Text;
        var ids = tiny.Tokenizer.Encode(penalizedText);
        Assert.NotEqual(plain.Text, penalizedText);
        Assert.Equal(ids.Length, ids.Distinct().Count());
    }

    [Fact]
    public async Task InstructionsActAsTheSystemMessage()
    {
        using var client = Client();
        var withInstructions = Greedy(8);
        withInstructions.Instructions = "Answer in one word.";
        var a = await client.GetResponseAsync(Conversation("Color of the sky?"), withInstructions);
        var b = await client.GetResponseAsync([new(ChatRole.System, "Answer in one word."), .. Conversation("Color of the sky?")], Greedy(8));
        Assert.Equal(b.Text, a.Text);
        Assert.Equal(b.Usage!.InputTokenCount, a.Usage!.InputTokenCount);
    }

    [Fact]
    public void GetServiceReturnsMetadataAndTheModel()
    {
        using var client = Client();
        IChatClient chat = client;
        var metadata = chat.GetService<ChatClientMetadata>();
        Assert.NotNull(metadata);
        Assert.Equal("Qwen2Managed", metadata.ProviderName);
        Assert.Equal(Path.GetFileName(tiny.Directory), metadata.DefaultModelId);
        Assert.Same(tiny.Model, chat.GetService<Qwen2Model>());
        Assert.Same(client, chat.GetService<Qwen2ChatClient>());
        Assert.Null(chat.GetService<ChatClientMetadata>("some key"));
        Assert.Null(chat.GetService(typeof(string)));

        Assert.Equal("Qwen/Qwen2.5-0.5B-Instruct", Qwen2ChatClient.ModelId("/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/abc123/"));
        Assert.Equal("my-model", Qwen2ChatClient.ModelId("/data/my-model"));
    }

    [Fact]
    public async Task Qwen3TemplateSplitsReasoningAndHonoursEnableThinking()
    {
        using var scripted = ScriptedModel.Reasoning();
        Assert.Equal(ChatTemplateFamily.Qwen3, scripted.Pipeline.ChatTemplate.Family);
        using var client = new Qwen2ChatClient(scripted.Pipeline);
        var messages = Conversation("Why is the sky blue?");
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, Greedy(20))) updates.Add(u);
        // The model wrote "<think>Rayleigh scattering</think>\n\nBlue", its opening tag over three tokens.
        Assert.Equal("Rayleigh scattering", string.Concat(updates.SelectMany(u => u.Contents).OfType<TextReasoningContent>().Select(r => r.Text)));
        Assert.Equal("Blue", string.Concat(updates.Select(u => u.Text)));
        Assert.All(updates, u => Assert.DoesNotContain("<", u.Text, StringComparison.Ordinal));
        var whole = await client.GetResponseAsync(messages, Greedy(20));
        Assert.Equal("Blue", whole.Text);
        Assert.Equal("Rayleigh scattering", Assert.Single(whole.Messages[0].Contents.OfType<TextReasoningContent>()).Text);
        Assert.Equal(ChatFinishReason.Stop, whole.FinishReason);

        var on = await client.GetResponseAsync(messages, Greedy(1));
        var off = await client.GetResponseAsync(messages, new ChatOptions { Temperature = 0, MaxOutputTokens = 1, AdditionalProperties = new() { ["enable_thinking"] = false } });
        Assert.Equal(on.Usage!.InputTokenCount + scripted.Tokenizer.Encode("<think>\n\n</think>\n\n").Length, off.Usage!.InputTokenCount);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(messages, new ChatOptions { AdditionalProperties = new() { ["enable_thinking"] = "no" } }));
        Assert.Contains("enable_thinking", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseFunctionInvocationRunsAToolRoundTrip()
    {
        using var scripted = ScriptedModel.ToolCaller(); // calls get_weather(city: "Paris") until a tool result is in the context
        var cities = new List<string>();
        var weather = AIFunctionFactory.Create((string city) => { cities.Add(city); return "sunny, 21 °C"; }, "get_weather", "The weather in a city.");
        using var client = new ChatClientBuilder(new Qwen2ChatClient(scripted.Pipeline)).UseFunctionInvocation().Build();
        var response = await client.GetResponseAsync([new(ChatRole.User, "Weather in Paris?")], new ChatOptions { Tools = [weather], Temperature = 0 });
        Assert.Equal(["Paris"], cities);
        Assert.Equal(ScriptedModel.WeatherAnswer, response.Text);
        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("get_weather", call.Name);
        Assert.StartsWith("call_", call.CallId, StringComparison.Ordinal);
        var result = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>());
        Assert.Equal(call.CallId, result.CallId);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
    }

    [Fact]
    public async Task AToolCallStreamsAsOneFunctionCallWithTheToolCallsFinishReason()
    {
        using var scripted = ScriptedModel.ToolCaller();
        using var client = new Qwen2ChatClient(scripted.Pipeline);
        var tool = AIFunctionFactory.CreateDeclaration("get_weather", "The weather in a city.", JsonDocument.Parse("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}").RootElement);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new(ChatRole.User, "Weather in Paris?")], new ChatOptions { Tools = [tool], Temperature = 0 })) updates.Add(u);
        Assert.Equal("", string.Concat(updates.Select(u => u.Text)));
        var call = Assert.Single(updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>());
        Assert.Equal("Paris", ((JsonElement)call.Arguments!["city"]!).GetString());
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);

        // Without tools offered, the same text is the answer, unparsed.
        var plain = await client.GetResponseAsync([new(ChatRole.User, "Weather in Paris?")], Greedy(40));
        Assert.Equal(ScriptedModel.WeatherCall, plain.Text);
    }

    // Days is a long: the schema .NET generates gives integers no minimum/maximum, so an int could overflow.
    public sealed record Forecast(string City, long Days, bool Rain);

    [Fact]
    public async Task GetResponseAsyncOfTReturnsTypedObjectsFromAConstrainedReply()
    {
        using var client = Client();
        // Greedy: a random model's strings at a high temperature run to JsonLimits' 4,096 characters, past any small
        // token budget (the server and property tests bound them with maxLength).
        var response = await client.GetResponseAsync<Forecast>("The forecast, please.", new ChatOptions { Temperature = 0, MaxOutputTokens = 300 });
        Assert.True(response.TryGetResult(out var forecast), response.Text);
        Assert.NotNull(forecast!.City);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        // A schema keyword constrained decoding does not support is refused, naming its path.
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => client.GetResponseAsync(Conversation("x"),
            new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("{\"type\":\"string\",\"pattern\":\"a+\"}").RootElement) }));
        Assert.Contains("#/pattern", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("now")]
    public async Task AForcedCallsArgumentsValidateAgainstTheFunctionsParameters(string? name)
    {
        using var client = Client();
        const string weather = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":16}},\"required\":[\"city\"],\"additionalProperties\":false}";
        const string clock = "{\"type\":\"object\",\"properties\":{\"zone\":{\"enum\":[\"UTC\",\"CET\"]}},\"required\":[\"zone\"],\"additionalProperties\":false}";
        var tools = new List<AITool>
        {
            AIFunctionFactory.CreateDeclaration("get_weather", "The weather.", JsonDocument.Parse(weather).RootElement),
            AIFunctionFactory.CreateDeclaration("now", "The time.", JsonDocument.Parse(clock).RootElement),
        };
        var mode = name is null ? ChatToolMode.RequireAny : ChatToolMode.RequireSpecific(name);
        for (int seed = 1; seed <= 3; seed++)
        {
            var response = await client.GetResponseAsync(Conversation("Weather in Paris?"), new ChatOptions { Tools = tools, ToolMode = mode, Temperature = 1, Seed = seed, MaxOutputTokens = 200 });
            var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
            if (name is not null) Assert.Equal(name, call.Name);
            string arguments = JsonSerializer.Serialize(call.Arguments, AIJsonUtilities.DefaultOptions);
            var result = Json.Schema.JsonSchema.FromText(call.Name == "now" ? clock : weather).Evaluate(System.Text.Json.Nodes.JsonNode.Parse(arguments));
            Assert.True(result.IsValid, $"{call.Name}({arguments})");
            Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        }
    }

    [Fact]
    public async Task UseFunctionInvocationWithAForcedCallRunsTheFunctionWithValidArguments()
    {
        // A random-weight model: only constrained decoding makes it call, and with arguments the function can bind.
        var zones = new List<string>();
        var now = AIFunctionFactory.Create((Zone zone) => { zones.Add(zone.ToString()); return "12:00"; }, "now", "The time in a zone.");
        using var client = new ChatClientBuilder(Client()).UseFunctionInvocation().Build();
        var response = await client.GetResponseAsync([new(ChatRole.User, "What time is it?")],
            new ChatOptions { Tools = [now], ToolMode = ChatToolMode.RequireAny, Temperature = 0, MaxOutputTokens = 60 });
        var zone = Assert.Single(zones);
        Assert.True(Enum.IsDefined(Enum.Parse<Zone>(zone)));
        Assert.Equal("12:00", Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>()).Result?.ToString());
    }

    public enum Zone { Utc, Cet }

    [Fact]
    public void ChatSessionSendPartsSplitsTheScriptedReasoning()
    {
        using var scripted = ScriptedModel.Reasoning();
        var options = new GenerationOptions { Sampling = SamplingOptions.Greedy, MaxNewTokens = 20 };
        var session = new ChatSession(scripted.Pipeline);
        var parts = session.SendParts("Why is the sky blue?", options).ToList();
        Assert.Equal("Rayleigh scattering", string.Concat(parts.Select(d => d.Reasoning)));
        Assert.Equal("Blue", string.Concat(parts.Select(d => d.Content)));
        Assert.Equal("<think>Rayleigh scattering</think>\n\nBlue", session.History[^1].Content); // the history keeps the reply as written
    }
}
