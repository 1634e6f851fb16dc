using System.Text;
using System.Text.Json;
using Qwen2.Native.Text;

namespace Qwen2.Server.Http;

/// <summary>
/// Reads a chat request's <c>messages</c>: roles system (or developer), user, assistant (text, and <c>tool_calls</c>
/// whose arguments are JSON text) and tool (a function's result), text content.
/// </summary>
internal static class ChatMessages
{
    public static IReadOnlyList<ChatMessage> Read(JsonFields f)
    {
        if (f.Get("messages") is not { } e) throw ApiException.BadRequest("messages is required: an array of {role, content} objects", "messages");
        if (e.ValueKind != JsonValueKind.Array) throw JsonFields.Mistyped("messages", "an array", e);
        if (e.GetArrayLength() == 0) throw ApiException.BadRequest("messages is empty; give at least one message", "messages");
        var list = new List<ChatMessage>();
        foreach (var m in e.EnumerateArray())
        {
            string at = $"messages[{list.Count}]";
            if (m.ValueKind != JsonValueKind.Object) throw JsonFields.Mistyped(at, "an object", m);
            var fields = new JsonFields(m);
            string role = fields.String("role") ?? throw ApiException.BadRequest($"{at}.role is required", "messages");
            role = role switch
            {
                "system" or "developer" => "system", // OpenAI's newer name for the system message
                "user" or "assistant" or "tool" => role,
                _ => throw ApiException.BadRequest($"{at}.role \"{role}\" is not supported; use system, user, assistant or tool", "messages"),
            };
            list.Add(new ChatMessage(role, Content(fields, at, role)) { ToolCalls = role == "assistant" ? ToolCalls(fields, at) : null });
        }
        return list;
    }

    /// <summary>An assistant message's <c>tool_calls</c>: OpenAI's <c>{id, type: "function", function: {name, arguments}}</c>, arguments a JSON object's text.</summary>
    private static IReadOnlyList<ToolCall>? ToolCalls(JsonFields m, string at)
    {
        if (m.Get("tool_calls") is not { } calls) return null;
        if (calls.ValueKind != JsonValueKind.Array) throw JsonFields.Mistyped($"{at}.tool_calls", "an array", calls);
        var list = new List<ToolCall>();
        foreach (var call in calls.EnumerateArray())
        {
            string callAt = $"{at}.tool_calls[{list.Count}]";
            if (call.ValueKind != JsonValueKind.Object || new JsonFields(call).Get("function") is not { ValueKind: JsonValueKind.Object } fn)
                throw ApiException.BadRequest($"{callAt} must be an object with a function", "messages");
            var f = new JsonFields(fn);
            string name = f.String("name") is { Length: > 0 } n ? n : throw ApiException.BadRequest($"{callAt}.function.name is required", "messages");
            string arguments = f.Get("arguments") switch
            {
                null => "{}",
                { ValueKind: JsonValueKind.String } s => s.GetString()!,
                { ValueKind: JsonValueKind.Object } o => o.GetRawText(), // some clients send the object itself
                var other => throw JsonFields.Mistyped($"{callAt}.function.arguments", "a JSON object's text", other.Value),
            };
            try
            {
                using var doc = JsonDocument.Parse(arguments);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"{callAt}.function.arguments must be a JSON object's text", "messages");
            }
            catch (JsonException e)
            {
                throw ApiException.BadRequest($"{callAt}.function.arguments is not JSON: {e.Message}", "messages");
            }
            list.Add(new ToolCall(name, arguments, new JsonFields(call).String("id")));
        }
        return list;
    }

    private static string Content(JsonFields m, string at, string role)
    {
        if (m.Get("content") is not { } c)
            return role == "assistant" ? "" : throw ApiException.BadRequest($"{at}.content is required", "messages");
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw JsonFields.Mistyped($"{at}.content", "a string or an array of text parts", c);
        // Content parts: only text (images and audio need a model that reads them).
        var sb = new StringBuilder();
        int i = 0;
        foreach (var part in c.EnumerateArray())
        {
            string partAt = $"{at}.content[{i++}]";
            if (part.ValueKind != JsonValueKind.Object) throw JsonFields.Mistyped(partAt, "an object", part);
            var p = new JsonFields(part);
            string type = p.String("type") ?? throw ApiException.BadRequest($"{partAt}.type is required", "messages");
            if (type != "text") throw ApiException.BadRequest($"{partAt}.type \"{type}\" is not supported; only text parts are", "messages");
            sb.Append(p.String("text") ?? throw ApiException.BadRequest($"{partAt}.text is required", "messages"));
        }
        return sb.ToString();
    }
}
