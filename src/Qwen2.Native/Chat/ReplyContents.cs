using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen2.Native.Text;

namespace Qwen2.Native.Chat;

/// <summary>
/// A reply's streamed text as Microsoft.Extensions.AI contents, through a <see cref="ReplySplitter"/>: reasoning as
/// <see cref="TextReasoningContent"/>, the answer as <see cref="TextContent"/>, each call as a
/// <see cref="FunctionCallContent"/>, and a malformed block as an <see cref="ErrorContent"/> whose details hold its text.
/// </summary>
internal sealed class ReplyContents(ReasoningSplitter? reasoning, ToolCallParser? tools)
{
    private readonly ReplySplitter _splitter = new(reasoning, tools);

    /// <summary>Whether a function call has come out.</summary>
    public bool SawCall => _splitter.SawCall;

    /// <summary>The update for a piece of reply text; null when nothing is certain yet.</summary>
    public ChatResponseUpdate? Push(string piece) => Update(_splitter.Push(piece));

    /// <summary>What the end of the reply makes certain.</summary>
    public ChatResponseUpdate? Flush() => Update(_splitter.Flush());

    private static ChatResponseUpdate? Update(ReplyDelta d)
    {
        if (d.IsEmpty) return null;
        var contents = new List<AIContent>(2);
        if (d.Reasoning.Length > 0) contents.Add(new TextReasoningContent(d.Reasoning));
        if (d.Content.Length > 0) contents.Add(new TextContent(d.Content));
        foreach (var parsed in d.Calls)
            contents.Add(parsed.Call is { } call
                ? new FunctionCallContent(call.Id!, call.Name, Arguments(call.Arguments))
                : new ErrorContent($"the model wrote a malformed tool call: {parsed.Error}") { Details = parsed.Raw, ErrorCode = "malformed_tool_call" });
        return new ChatResponseUpdate(ChatRole.Assistant, contents);
    }

    /// <summary>A call's JSON object as the dictionary FunctionCallContent carries: each value a JsonElement.</summary>
    private static Dictionary<string, object?> Arguments(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
    }
}
