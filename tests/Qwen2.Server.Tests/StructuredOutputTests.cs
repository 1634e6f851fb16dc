using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using OpenAI.Chat;
using Qwen2.Native.Tests;

#pragma warning disable OPENAI001 // ChatCompletionOptions.Seed is marked experimental in the SDK; the server implements it

namespace Qwen2.Server.Tests;

/// <summary>
/// <c>response_format</c> and forced tool calls (<c>tool_choice</c> "required" or a named function) through the official
/// OpenAI .NET SDK on a random-weight model: every reply parses and validates (JsonSchema.Net, a validator this project
/// did not write) against the schema, or the called function's parameters, whatever the seed and temperature.
/// </summary>
public sealed class StructuredOutputTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private const string Person = """
        {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"},
         "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3}, "admin": {"type": "boolean"}},
         "required": ["name", "age"], "additionalProperties": false}
        """;
    private const string Weather = """{"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, "days": {"type": "integer"}}, "required": ["city"]}""";
    private const string Clock = """{"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}""";

    private static void AssertValid(string schema, string json)
    {
        var result = JsonSchema.FromText(schema).Evaluate(JsonNode.Parse(json), new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, $"{json} is not valid for {schema}");
    }

    [Theory]
    [InlineData(0.0, 1L)]
    [InlineData(1.0, 2L)]
    [InlineData(1.5, 3L)]
    public async Task JsonSchemaRepliesValidateForAnySeedAndTemperature(double temperature, long seed)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(Person), jsonSchemaIsStrict: true),
            Temperature = (float)temperature, Seed = seed, MaxOutputTokenCount = 300,
        };
        var reply = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage("Describe a person.")], options)).Value;
        Assert.Equal(ChatFinishReason.Stop, reply.FinishReason);
        AssertValid(Person, reply.Content[0].Text);
    }

    [Fact]
    public async Task JsonObjectRepliesAreObjects()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var options = new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat(), Temperature = 1, Seed = 4, MaxOutputTokenCount = 300 };
        var reply = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage("Some JSON.")], options)).Value;
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(reply.Content[0].Text).RootElement.ValueKind);
    }

    [Theory]
    [InlineData(null, 5L)]
    [InlineData("now", 6L)]
    [InlineData("get_weather", 7L)]
    public async Task AForcedCallsArgumentsValidateAgainstItsParameters(string? name, long seed)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var options = new ChatCompletionOptions
        {
            Tools = { ChatTool.CreateFunctionTool("get_weather", "The weather.", BinaryData.FromString(Weather)), ChatTool.CreateFunctionTool("now", "The time.", BinaryData.FromString(Clock)) },
            ToolChoice = name is null ? ChatToolChoice.CreateRequiredChoice() : ChatToolChoice.CreateFunctionChoice(name),
            Temperature = 1, Seed = seed, MaxOutputTokenCount = 300,
        };
        var reply = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage("Weather in Paris?")], options)).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, reply.FinishReason);
        var call = Assert.Single(reply.ToolCalls);
        if (name is not null) Assert.Equal(name, call.FunctionName);
        AssertValid(call.FunctionName == "now" ? Clock : Weather, call.FunctionArguments.ToString());
    }

    [Theory]
    [InlineData("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"string\",\"pattern\":\"a+\"}}}", "#/pattern")]
    [InlineData("{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{}}}", "json_schema.name is required")]
    [InlineData("{\"type\":\"xml\"}", "\\\"xml\\\" is not supported")]
    public async Task BadResponseFormatsAre400s(string format, string message)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var r = await host.Http.PostAsync("/v1/chat/completions", new StringContent($"{{\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"response_format\":{format}}}", Encoding.UTF8, "application/json"));
        string body = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains(message, body);
        Assert.Contains("response_format", body);
    }
}
