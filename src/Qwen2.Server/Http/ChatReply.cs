using Qwen2.Native.Text;
using Qwen2.Server.Protocol;

namespace Qwen2.Server.Http;

/// <summary>
/// A chat reply's text taken apart while it streams (a <see cref="ReplySplitter"/>), in OpenAI's form: reasoning, the
/// answer, and each call with its index among the reply's calls. A malformed <c>&lt;tool_call&gt;</c> block stays in the
/// answer as the model wrote it: nothing is dropped.
/// </summary>
internal sealed class ChatReply(ReasoningSplitter? reasoning, ToolCallParser? tools)
{
    private readonly ReplySplitter _splitter = new(reasoning, tools);
    private int _calls;

    /// <summary>The calls so far.</summary>
    public int CallCount => _calls;

    /// <summary>What a piece of text makes certain: reasoning, answer and whole calls (any may be empty).</summary>
    public (string Reasoning, string Content, IReadOnlyList<ChunkToolCall> Calls) Push(string piece) => Map(_splitter.Push(piece));

    /// <summary>What the end of the reply makes certain.</summary>
    public (string Reasoning, string Content, IReadOnlyList<ChunkToolCall> Calls) Flush() => Map(_splitter.Flush());

    private (string, string, IReadOnlyList<ChunkToolCall>) Map(ReplyDelta d)
    {
        string text = d.Content;
        var calls = new List<ChunkToolCall>();
        foreach (var c in d.Calls)
        {
            if (c.Call is { } call) calls.Add(new ChunkToolCall(_calls++, call.Id!, "function", new FunctionCallBody(call.Name, call.Arguments)));
            else text += c.Raw;
        }
        return (d.Reasoning, text, calls);
    }
}
