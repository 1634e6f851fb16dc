namespace Qwen2.Native.Text;

/// <summary>One message of a conversation.</summary>
/// <param name="Role">"system", "user", "assistant" or "tool" (a function's result).</param>
/// <param name="Content">The text (for a tool message, the function's result as the model should read it).</param>
public sealed record ChatMessage(string Role, string Content)
{
    /// <summary>The functions an assistant message calls, written after its text as the template writes them; null or empty for none.</summary>
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>A system message.</summary>
    public static ChatMessage System(string content) => new("system", content);
    /// <summary>A user message.</summary>
    public static ChatMessage User(string content) => new("user", content);
    /// <summary>An assistant message.</summary>
    public static ChatMessage Assistant(string content) => new("assistant", content);
    /// <summary>An assistant message that calls functions (after <paramref name="content"/>, which may be empty).</summary>
    public static ChatMessage Assistant(string content, IReadOnlyList<ToolCall> toolCalls) => new("assistant", content) { ToolCalls = toolCalls };
    /// <summary>A function's result (Qwen's templates write consecutive ones into one user turn as &lt;tool_response&gt; blocks).</summary>
    public static ChatMessage Tool(string content) => new("tool", content);
}
