using System.Text.Json;

namespace Qwen2.Native.Structured;

/// <summary>
/// The JSON a forced tool call is constrained to: <c>{"name": one of the functions, "arguments": that function's
/// parameters}</c>, the object Qwen's templates put between <c>&lt;tool_call&gt;</c> tags. Generation starts after the
/// opening tag (the prompt ends with it), so the arguments are valid for the named function's parameter schema.
/// </summary>
public static class ToolCallSchema
{
    /// <summary>The text a forced call's generation continues: the opening tag as the templates write it.</summary>
    public const string PromptSuffix = "<tool_call>\n";

    /// <summary>The response format for a call to one of <paramref name="tools"/> (OpenAI's form: <c>{"type": "function", "function": {"name", "parameters"}}</c>).</summary>
    /// <exception cref="ArgumentException">No tools, or a function without a name.</exception>
    /// <exception cref="JsonSchemaException">A function's parameters use a keyword constrained decoding does not support; the path names the tool.</exception>
    public static ResponseFormat For(IReadOnlyList<JsonElement> tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        if (tools.Count == 0) throw new ArgumentException("a forced tool call needs at least one tool", nameof(tools));
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            if (tools.Count > 1) { w.WriteStartObject(); w.WriteStartArray("anyOf"); }
            foreach (var tool in tools)
            {
                var fn = tool.TryGetProperty("function", out var f) ? f : tool;
                string name = fn.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : throw new ArgumentException("a tool has no function name", nameof(tools));
                w.WriteStartObject();
                w.WriteString("type", "object");
                w.WriteStartObject("properties");
                w.WriteStartObject("name");
                w.WriteString("const", name);
                w.WriteEndObject();
                w.WritePropertyName("arguments");
                if (fn.TryGetProperty("parameters", out var p) && p.ValueKind == JsonValueKind.Object) p.WriteTo(w);
                else { w.WriteStartObject(); w.WriteString("type", "object"); w.WriteEndObject(); }
                w.WriteEndObject();
                w.WriteStartArray("required");
                w.WriteStringValue("name");
                w.WriteStringValue("arguments");
                w.WriteEndArray();
                w.WriteBoolean("additionalProperties", false);
                w.WriteEndObject();
            }
            if (tools.Count > 1) { w.WriteEndArray(); w.WriteEndObject(); }
        }
        using var doc = JsonDocument.Parse(buffer.ToArray());
        return ResponseFormat.JsonSchema(doc.RootElement.Clone());
    }
}
