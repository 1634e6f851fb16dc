using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using Qwen2.Native.Tests;

namespace Qwen2.Server.Tests;

/// <summary>
/// <c>tools</c> through the official OpenAI .NET SDK, on a scripted model that calls get_weather(city: "Paris") until a
/// tool result is in its context and then answers: the call comes back in <c>message.tool_calls</c> and streamed
/// <c>delta.tool_calls</c>, and the tool's result leads to the answer.
/// </summary>
public sealed class ToolCallTests : IDisposable
{
    private readonly ScriptedModel _scripted = ScriptedModel.ToolCaller();

    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool("get_weather", "The weather in a city.",
        BinaryData.FromString("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}"));

    public void Dispose() => _scripted.Dispose();

    [Fact]
    public async Task ACallComesBackAsToolCallsAndItsResultLeadsToTheAnswer()
    {
        await using var host = await TestServerHost.StartAsync(_scripted.Pipeline);
        var chat = host.Chat();
        var options = new ChatCompletionOptions { Tools = { Weather }, Temperature = 0 };
        List<ChatMessage> messages = [ChatMessage.CreateUserMessage("Weather in Paris?")];
        var first = (await chat.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement.GetProperty("city").GetString());
        Assert.StartsWith("call_", call.Id, StringComparison.Ordinal);
        Assert.Empty(first.Content);

        messages.Add(new AssistantChatMessage(first));
        messages.Add(ChatMessage.CreateToolMessage(call.Id, "sunny, 21 °C"));
        var second = (await chat.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal(ScriptedModel.WeatherAnswer, second.Content[0].Text);
        Assert.Empty(second.ToolCalls);
    }

    [Fact]
    public async Task AStreamedCallArrivesWholeInOneDelta()
    {
        await using var host = await TestServerHost.StartAsync(_scripted.Pipeline);
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var u in host.Chat().CompleteChatStreamingAsync([ChatMessage.CreateUserMessage("Weather in Paris?")], new ChatCompletionOptions { Tools = { Weather }, Temperature = 0 }))
            updates.Add(u);
        var parts = updates.SelectMany(u => u.ToolCallUpdates).ToList();
        var part = Assert.Single(parts);
        Assert.Equal(0, part.Index);
        Assert.Equal("get_weather", part.FunctionName);
        Assert.Equal("{\"city\":\"Paris\"}", part.FunctionArgumentsUpdate.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, updates.Last(u => u.FinishReason is not null).FinishReason);
        Assert.Equal("", string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(c => c.Text)));
    }

    [Theory]
    [InlineData("\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}", "which tools does not hold")]
    [InlineData("\"tool_choice\":\"sometimes\"", "tool_choice must be")]
    [InlineData("\"tools\":[{\"type\":\"function\"}]", "tools[0].function is required")]
    [InlineData("\"tools\":[{\"type\":\"code_interpreter\"}]", "tools[0].type must be \\\"function\\\"")]
    public async Task BadToolFieldsAre400s(string field, string message)
    {
        await using var host = await TestServerHost.StartAsync(_scripted.Pipeline);
        string tools = field.StartsWith("\"tools\"", StringComparison.Ordinal) ? "" : ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
        var r = await host.Http.PostAsync("/v1/chat/completions", new StringContent($"{{\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}]{tools},{field}}}", Encoding.UTF8, "application/json"));
        string body = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains(message, body);
    }
}
