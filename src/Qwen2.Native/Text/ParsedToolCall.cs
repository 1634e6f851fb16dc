namespace Qwen2.Native.Text;

/// <summary>A <c>&lt;tool_call&gt;</c> block of a model's output: the call it holds, or why it holds none.</summary>
/// <param name="Call">The call (with a fresh id), or null when the block is malformed.</param>
/// <param name="Raw">The block as the model wrote it, tags included.</param>
/// <param name="Error">Why the block holds no call (not JSON, no name, arguments not an object, never closed); null when it does.</param>
public sealed record ParsedToolCall(ToolCall? Call, string Raw, string? Error);
