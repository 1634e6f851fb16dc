namespace Qwen2.Native.Text;

/// <summary>What one piece of output added to the reasoning and to the answer (either may be empty).</summary>
/// <param name="Reasoning">Reasoning text, tags and surrounding newlines removed.</param>
/// <param name="Content">Answer text.</param>
public readonly record struct ReasoningDelta(string Reasoning, string Content)
{
    /// <summary>Whether the piece added nothing yet.</summary>
    public bool IsEmpty => Reasoning.Length == 0 && Content.Length == 0;
}
