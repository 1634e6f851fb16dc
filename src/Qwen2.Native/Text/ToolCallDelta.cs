namespace Qwen2.Native.Text;

/// <summary>What one piece of output added: text now certain to be text, and the calls whose blocks closed in it.</summary>
/// <param name="Text">Answer text outside any call.</param>
/// <param name="Calls">Blocks completed by the piece, in order (malformed ones included, with their error).</param>
public readonly record struct ToolCallDelta(string Text, IReadOnlyList<ParsedToolCall> Calls)
{
    /// <summary>Whether the piece added nothing yet.</summary>
    public bool IsEmpty => Text.Length == 0 && Calls.Count == 0;
}
