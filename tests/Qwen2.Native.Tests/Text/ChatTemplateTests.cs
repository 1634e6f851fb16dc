using System.Text.Json;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>ChatTemplate against renders of the real Jinja templates by jinja2 (tools/chat/render_goldens.py).</summary>
public class ChatTemplateTests
{
    public sealed record Render(string Name, string Template, ChatMessage[] Messages, bool AddGenerationPrompt, bool EnableThinking, string Expected, JsonElement[]? Tools = null)
    {
        public override string ToString() => $"{Name} {Messages.Length} messages gen={AddGenerationPrompt} think={EnableThinking} tools={Tools?.Length ?? 0}";
    }

    /// <summary>A message of renders.json; tool calls' arguments are objects there, JSON text here (as OpenAI's API carries them).</summary>
    private static ChatMessage Message(JsonElement m)
    {
        var message = new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!);
        if (!m.TryGetProperty("tool_calls", out var calls)) return message;
        return message with
        {
            ToolCalls = calls.EnumerateArray().Select(c => c.GetProperty("function"))
                .Select(f => new ToolCall(f.GetProperty("name").GetString()!, f.GetProperty("arguments").GetRawText())).ToArray(),
        };
    }

    public static TheoryData<int> Indices => new(Enumerable.Range(0, Load().Length));

    private static Render[] Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "chat", "renders.json")));
        return doc.RootElement.EnumerateArray().Select(r => new Render(
            r.GetProperty("name").GetString()!, r.GetProperty("template").GetString()!,
            r.GetProperty("messages").EnumerateArray().Select(Message).ToArray(),
            r.GetProperty("add_generation_prompt").GetBoolean(), r.GetProperty("enable_thinking").GetBoolean(), r.GetProperty("expected").GetString()!,
            r.TryGetProperty("tools", out var tools) ? tools.EnumerateArray().Select(t => t.Clone()).ToArray() : null)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void RendersAsJinjaDoes(int index)
    {
        var r = Load()[index];
        var template = ChatTemplate.Parse(r.Template);
        Assert.Equal(r.Expected, template.Render(r.Messages, r.AddGenerationPrompt, r.EnableThinking, r.Tools));
    }

    [Fact]
    public void RecognizesEachFamilyAndItsDefaultSystemPrompt()
    {
        var byName = Load().GroupBy(r => r.Name).ToDictionary(g => g.Key, g => ChatTemplate.Parse(g.First().Template));
        Assert.Equal(ChatTemplateFamily.Qwen2, byName["qwen2"].Family);
        Assert.Equal("You are a helpful assistant.", byName["qwen2"].DefaultSystemPrompt);
        Assert.Equal(ChatTemplateFamily.Qwen25, byName["qwen2.5"].Family);
        Assert.Equal(ChatTemplate.Qwen25.DefaultSystemPrompt, byName["qwen2.5"].DefaultSystemPrompt);
        Assert.Equal(ChatTemplateFamily.Qwen3, byName["qwen3"].Family);
        Assert.Null(byName["qwen3"].DefaultSystemPrompt);
    }

    [Fact]
    public void AContinuationExtendsTheRenderedConversation()
    {
        foreach (var template in Load().Where(r => r.Name != "qwen3").Select(r => r.Template).Distinct().Select(t => ChatTemplate.Parse(t)))
        {
            var history = new List<ChatMessage> { ChatMessage.User("Hi") };
            string first = template.Render(history);
            history.Add(ChatMessage.Assistant("Hello."));
            var next = ChatMessage.User("More?");
            // A reply that ended with <|im_end|> (the eos token, already in the context) continues with "\n".
            string closed = first + "Hello.<|im_end|>" + template.RenderContinuation(next, replyClosed: true);
            string open = first + "Hello." + template.RenderContinuation(next, replyClosed: false);
            history.Add(next);
            Assert.Equal(template.Render(history), closed);
            Assert.Equal(template.Render(history), open);
        }
    }

    [Fact]
    public void RefusesWhatItCannotRenderFaithfully()
    {
        Assert.Throws<NotSupportedException>(() => ChatTemplate.Parse(null));
        var e = Assert.Throws<NotSupportedException>(() => ChatTemplate.Parse("{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}", "x/tokenizer_config.json"));
        Assert.Contains("x/tokenizer_config.json", e.Message);
        var t = ChatTemplate.Qwen25;
        Assert.Throws<ArgumentException>(() => t.Render([ChatMessage.User("a"), new ChatMessage("critic", "b")]));
        // Qwen2's template has no tool calling: tools are refused rather than dropped.
        var qwen2 = ChatTemplate.Parse(Load().First(r => r.Name == "qwen2").Template);
        Assert.Contains("no tool calling", Assert.Throws<NotSupportedException>(() => qwen2.Render([ChatMessage.User("a"), ChatMessage.Tool("b")])).Message);
        Assert.Throws<ArgumentException>(() => t.Render([ChatMessage.User("a"), ChatMessage.Assistant("", [new ToolCall("f", "{not json")])]));
        // A later system message is not refused: every Qwen template writes it where it stands (renders.json holds jinja2's).
        Assert.EndsWith("<|im_start|>system\nb<|im_end|>\n", t.Render([ChatMessage.User("a"), ChatMessage.System("b")], addGenerationPrompt: false));
    }
}
