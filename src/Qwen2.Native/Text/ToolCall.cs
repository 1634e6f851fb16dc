using System.Text.Json;

namespace Qwen2.Native.Text;

/// <summary>A function call an assistant turn makes: the function's name and its arguments as a JSON object.</summary>
/// <param name="Name">The function's name.</param>
/// <param name="Arguments">The arguments: a JSON object's text, as OpenAI's API carries them.</param>
/// <param name="Id">The call's id (OpenAI's <c>tool_calls[].id</c>); templates do not write it.</param>
public sealed record ToolCall(string Name, string Arguments, string? Id = null)
{
    /// <summary>The arguments parsed; a caller's malformed JSON is an <see cref="ArgumentException"/> naming the call.</summary>
    internal JsonElement ParsedArguments()
    {
        try
        {
            using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(Arguments) ? "{}" : Arguments);
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"the arguments of the call to {Name} are not JSON: {e.Message}", "messages", e);
        }
    }
}
