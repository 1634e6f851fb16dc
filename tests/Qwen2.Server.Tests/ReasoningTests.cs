using System.Net;
using System.Text;
using System.Text.Json;
using Qwen2.Native.Generation;
using Qwen2.Native.Tests;
using Qwen2.Native.Text;

namespace Qwen2.Server.Tests;

/// <summary>
/// Qwen3 behind the server: <c>chat_template_kwargs.enable_thinking</c> as vLLM and llama.cpp take it, and the answer
/// in <c>content</c> with any reasoning in <c>reasoning_content</c> (ReasoningSplitterTests hold the split itself to
/// every cut of the text).
/// </summary>
public sealed class ReasoningTests(TinyQwen3Model qwen3) : IClassFixture<TinyQwen3Model>
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private const string Messages = "\"messages\":[{\"role\":\"user\",\"content\":\"Why is the sky blue?\"}]";

    [Fact]
    public async Task EnableThinkingFalseRendersTheEmptyThinkBlock()
    {
        Assert.Equal(ChatTemplateFamily.Qwen3, qwen3.Pipeline.ChatTemplate.Family);
        await using var host = await TestServerHost.StartAsync(qwen3.Pipeline);
        async Task<JsonElement> Ask(string extra)
        {
            var r = await host.Http.PostAsync("/v1/chat/completions", Json($"{{{Messages},\"max_tokens\":6,\"temperature\":0{extra}}}"));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        }
        var on = await Ask("");
        var off = await Ask(",\"chat_template_kwargs\":{\"enable_thinking\":false}");
        int block = qwen3.Pipeline.Tokenizer.Encode("<think>\n\n</think>\n\n").Length;
        Assert.Equal(on.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() + block, off.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        // The answer is what the model wrote, split as the splitter splits it.
        var prompt = qwen3.Pipeline.Tokenizer.Encode(qwen3.Pipeline.ChatTemplate.Render([new ChatMessage("user", "Why is the sky blue?")]));
        var expected = Reference.Generate(qwen3.Pipeline, prompt, Reference.Greedy(qwen3.Pipeline), 6);
        var splitter = new ReasoningSplitter();
        var (a, b) = (splitter.Push(expected.Text), splitter.Flush());
        var message = on.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal(a.Content + b.Content, message.GetProperty("content").GetString());
        string reasoning = a.Reasoning + b.Reasoning;
        if (reasoning.Length == 0) Assert.False(message.TryGetProperty("reasoning_content", out _));
        else Assert.Equal(reasoning, message.GetProperty("reasoning_content").GetString());
    }

    [Fact]
    public async Task StreamedDeltasAddUpToTheWholeAnswer()
    {
        await using var host = await TestServerHost.StartAsync(qwen3.Pipeline);
        var whole = JsonDocument.Parse(await (await host.Http.PostAsync("/v1/chat/completions", Json($"{{{Messages},\"max_tokens\":8,\"temperature\":0}}"))).Content.ReadAsStringAsync()).RootElement;
        var response = await host.Http.PostAsync("/v1/chat/completions", Json($"{{{Messages},\"max_tokens\":8,\"temperature\":0,\"stream\":true}}"));
        var events = await Sse.ReadAllAsync(response);
        var deltas = events[..^1].Select(Sse.Parse).Where(c => c.GetProperty("choices").GetArrayLength() == 1).Select(c => c.GetProperty("choices")[0].GetProperty("delta")).ToList();
        string Field(JsonElement d, string name) => d.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        var message = whole.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal(Field(message, "content"), string.Concat(deltas.Select(d => Field(d, "content"))));
        Assert.Equal(Field(message, "reasoning_content"), string.Concat(deltas.Select(d => Field(d, "reasoning_content"))));
        Assert.All(deltas, d => Assert.DoesNotContain("think>", Field(d, "content"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task AScriptedReasoningComesApartWholeAndStreamed()
    {
        using var scripted = ScriptedModel.Reasoning(); // writes <think>Rayleigh scattering</think>\n\nBlue, "<think>" over three tokens
        await using var host = await TestServerHost.StartAsync(scripted.Pipeline);
        var whole = JsonDocument.Parse(await (await host.Http.PostAsync("/v1/chat/completions", Json($"{{{Messages},\"temperature\":0}}"))).Content.ReadAsStringAsync()).RootElement;
        var choice = whole.GetProperty("choices")[0];
        Assert.Equal("Rayleigh scattering", choice.GetProperty("message").GetProperty("reasoning_content").GetString());
        Assert.Equal("Blue", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());

        var events = await Sse.ReadAllAsync(await host.Http.PostAsync("/v1/chat/completions", Json($"{{{Messages},\"temperature\":0,\"stream\":true}}")));
        var deltas = events[..^1].Select(Sse.Parse).Where(c => c.GetProperty("choices").GetArrayLength() == 1).Select(c => c.GetProperty("choices")[0].GetProperty("delta")).ToList();
        string Field(JsonElement d, string name) => d.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        Assert.Equal("Rayleigh scattering", string.Concat(deltas.Select(d => Field(d, "reasoning_content"))));
        Assert.Equal("Blue", string.Concat(deltas.Select(d => Field(d, "content"))));
    }

    [Fact]
    public async Task EnableThinkingOfTheWrongTypeIsA400NamingIt()
    {
        await using var host = await TestServerHost.StartAsync(qwen3.Pipeline);
        var r = await host.Http.PostAsync("/v1/chat/completions", Json($"{{{Messages},\"chat_template_kwargs\":{{\"enable_thinking\":\"no\"}}}}"));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var error = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Contains("chat_template_kwargs.enable_thinking", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
