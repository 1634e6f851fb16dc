using Qwen2.Native.Text;
using Qwen2.Server.Protocol;

namespace Qwen2.Server.Http;

/// <summary>
/// A chat reply's text taken apart while it streams: Qwen3's reasoning (when the template reasons), the answer, and
/// (when tools were offered) the function calls, each in OpenAI's form with its index among the reply's calls. A
/// malformed <c>&lt;tool_call&gt;</c> block stays in the answer as the model wrote it: nothing is dropped.
/// </summary>
internal sealed class ChatReply(ReasoningSplitter? reasoning, ToolCallParser? tools)
{
    private int _calls;

    /// <summary>The calls so far.</summary>
    public int CallCount => _calls;

    /// <summary>What a piece of text makes certain: reasoning, answer and whole calls (any may be empty).</summary>
    public (string Reasoning, string Content, IReadOnlyList<ChunkToolCall> Calls) Push(string piece) =>
        Split(reasoning is null ? new ReasoningDelta("", piece) : reasoning.Push(piece), end: false);

    /// <summary>What the end of the reply makes certain.</summary>
    public (string Reasoning, string Content, IReadOnlyList<ChunkToolCall> Calls) Flush() => Split(reasoning?.Flush() ?? default, end: true);

    private (string, string, IReadOnlyList<ChunkToolCall>) Split(ReasoningDelta d, bool end)
    {
        string content = d.Content ?? "";
        if (tools is null) return (d.Reasoning ?? "", content, []);
        var parsed = tools.Push(content);
        var text = parsed.Text;
        var calls = new List<ChunkToolCall>();
        void Take(ToolCallDelta t)
        {
            foreach (var c in t.Calls)
            {
                if (c.Call is { } call) calls.Add(new ChunkToolCall(_calls++, call.Id!, "function", new FunctionCallBody(call.Name, call.Arguments)));
                else text += c.Raw;
            }
        }
        Take(parsed);
        if (end)
        {
            var rest = tools.Flush();
            text += rest.Text;
            Take(rest);
        }
        return (d.Reasoning ?? "", text, calls);
    }
}
