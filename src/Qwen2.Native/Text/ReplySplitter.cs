namespace Qwen2.Native.Text;

/// <summary>
/// A chat reply's streamed text taken apart by the filters its template calls for: Qwen3's reasoning (when a
/// <see cref="ReasoningSplitter"/> is given) and, when tools were offered, the <c>&lt;tool_call&gt;</c> blocks (a
/// <see cref="ToolCallParser"/>), which run on the answer after the reasoning is out. Front ends map the parts to their
/// own types (the chat client's contents, the server's deltas).
/// </summary>
public sealed class ReplySplitter(ReasoningSplitter? reasoning, ToolCallParser? tools)
{
    /// <summary>Whether a well-formed function call has come out.</summary>
    public bool SawCall { get; private set; }

    /// <summary>What a piece of text makes certain.</summary>
    public ReplyDelta Push(string piece) => Split(reasoning is null ? new ReasoningDelta("", piece) : reasoning.Push(piece), end: false);

    /// <summary>What the end of the reply makes certain.</summary>
    public ReplyDelta Flush() => Split(reasoning?.Flush() ?? default, end: true);

    private ReplyDelta Split(ReasoningDelta d, bool end)
    {
        string content = d.Content ?? "";
        if (tools is null) return new ReplyDelta(d.Reasoning ?? "", content, []);
        var parsed = tools.Push(content);
        if (!end) return Delta(d.Reasoning, parsed.Text, parsed.Calls);
        var rest = tools.Flush();
        return Delta(d.Reasoning, parsed.Text + rest.Text, [.. parsed.Calls, .. rest.Calls]);
    }

    private ReplyDelta Delta(string? reasoning, string text, IReadOnlyList<ParsedToolCall> calls)
    {
        if (calls.Any(c => c.Call is not null)) SawCall = true;
        return new ReplyDelta(reasoning ?? "", text, calls);
    }
}
