using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen2.Native.Text;

namespace Qwen2.Native.Chat;

/// <summary>
/// A reply's streamed text as Microsoft.Extensions.AI contents: Qwen3's reasoning as <see cref="TextReasoningContent"/>
/// (when a splitter is given), the answer as <see cref="TextContent"/>, and, when tools were offered, each
/// <c>&lt;tool_call&gt;</c> block as a <see cref="FunctionCallContent"/> (a malformed one as an <see cref="ErrorContent"/>
/// whose details hold the block's text).
/// </summary>
internal sealed class ReplyContents(ReasoningSplitter? reasoning, ToolCallParser? tools)
{
    /// <summary>Whether a function call has come out.</summary>
    public bool SawCall { get; private set; }

    /// <summary>The update for a piece of reply text; null when nothing is certain yet.</summary>
    public ChatResponseUpdate? Push(string piece) => Make(reasoning is null ? new ReasoningDelta("", piece) : reasoning.Push(piece), end: false);

    /// <summary>What the end of the reply makes certain.</summary>
    public ChatResponseUpdate? Flush() => Make(reasoning?.Flush() ?? default, end: true);

    private ChatResponseUpdate? Make(ReasoningDelta d, bool end)
    {
        var contents = new List<AIContent>(2);
        if (d.Reasoning is { Length: > 0 } r) contents.Add(new TextReasoningContent(r));
        if (tools is null)
        {
            if (d.Content is { Length: > 0 } c) contents.Add(new TextContent(c));
        }
        else
        {
            Add(contents, tools.Push(d.Content ?? ""));
            if (end) Add(contents, tools.Flush());
        }
        return contents.Count == 0 ? null : new ChatResponseUpdate(ChatRole.Assistant, contents);
    }

    private void Add(List<AIContent> contents, ToolCallDelta d)
    {
        if (d.Text.Length > 0) contents.Add(new TextContent(d.Text));
        foreach (var parsed in d.Calls)
        {
            if (parsed.Call is { } call)
            {
                SawCall = true;
                contents.Add(new FunctionCallContent(call.Id!, call.Name, Arguments(call.Arguments)));
            }
            else contents.Add(new ErrorContent($"the model wrote a malformed tool call: {parsed.Error}") { Details = parsed.Raw, ErrorCode = "malformed_tool_call" });
        }
    }

    /// <summary>A call's JSON object as the dictionary FunctionCallContent carries: each value a JsonElement.</summary>
    private static Dictionary<string, object?> Arguments(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
    }
}
