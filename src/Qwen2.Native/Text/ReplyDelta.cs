namespace Qwen2.Native.Text;

/// <summary>What one piece of a reply made certain (any part may be empty).</summary>
/// <param name="Reasoning">Reasoning text (Qwen3's think block, tags removed).</param>
/// <param name="Content">Answer text outside any call.</param>
/// <param name="Calls">Tool-call blocks completed by the piece, malformed ones included with their error.</param>
public readonly record struct ReplyDelta(string Reasoning, string Content, IReadOnlyList<ParsedToolCall> Calls)
{
    /// <summary>Whether the piece added nothing yet.</summary>
    public bool IsEmpty => Reasoning.Length == 0 && Content.Length == 0 && Calls.Count == 0;
}
