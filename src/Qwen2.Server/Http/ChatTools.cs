using System.Text.Json;

namespace Qwen2.Server.Http;

/// <summary>
/// A chat request's <c>tools</c> and <c>tool_choice</c>, as OpenAI's API has them: function tools
/// (<c>{"type": "function", "function": {"name", "description", "parameters"}}</c>) written into the prompt by the chat
/// template, and whether the reply is parsed for calls.
/// </summary>
internal static class ChatTools
{
    /// <summary>
    /// The tool definitions the template writes (null for none: no tools, or <c>tool_choice: "none"</c>), and the tools
    /// a call is forced to (<c>"required"</c>: all; a named function: that one; null when the model may answer in text).
    /// </summary>
    public static (IReadOnlyList<JsonElement>? Tools, IReadOnlyList<JsonElement>? Forced) Read(JsonFields f)
    {
        var choice = Choice(f);
        if (f.Get("tools") is not { } tools) return choice is null or "none" or "auto" ? (null, null) : throw ApiException.BadRequest("tool_choice forces a call, but no tools are given", "tool_choice");
        if (tools.ValueKind != JsonValueKind.Array) throw JsonFields.Mistyped("tools", "an array of tools", tools);
        var list = new List<JsonElement>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            string at = $"tools[{i++}]";
            if (tool.ValueKind != JsonValueKind.Object) throw JsonFields.Mistyped(at, "an object", tool);
            var t = new JsonFields(tool);
            if (t.String("type") is not "function") throw ApiException.BadRequest($"{at}.type must be \"function\"", "tools");
            if (t.Get("function") is not { ValueKind: JsonValueKind.Object } function) throw ApiException.BadRequest($"{at}.function is required: an object with a name", "tools");
            var fn = new JsonFields(function);
            string name = fn.String("name") is { Length: > 0 } n ? n : throw ApiException.BadRequest($"{at}.function.name is required", "tools");
            if (!names.Add(name)) throw ApiException.BadRequest($"{at}.function.name \"{name}\" is given twice", "tools");
            if (fn.Get("parameters") is { } p && p.ValueKind != JsonValueKind.Object) throw JsonFields.Mistyped($"{at}.function.parameters", "a JSON Schema object", p);
            _ = fn.String("description");
            list.Add(tool.Clone());
        }
        if (list.Count == 0 || choice == "none") return (null, null);
        if (choice is null or "auto") return (list, null);
        if (choice == "required") return (list, list);
        var named = list.Where(t => t.GetProperty("function").GetProperty("name").GetString() == choice).ToArray();
        return named.Length > 0 ? (list, named) : throw ApiException.BadRequest($"tool_choice names the function {choice}, which tools does not hold", "tool_choice");
    }

    /// <summary>"none", "auto", "required", or a named function's name; null when absent.</summary>
    private static string? Choice(JsonFields f)
    {
        if (f.Get("tool_choice") is not { } c) return null;
        if (c.ValueKind == JsonValueKind.String)
            return c.GetString() is "none" or "auto" or "required" ? c.GetString() : throw ApiException.BadRequest($"tool_choice must be \"none\", \"auto\", \"required\" or a function, got \"{c.GetString()}\"", "tool_choice");
        if (c.ValueKind == JsonValueKind.Object && new JsonFields(c).Get("function") is { ValueKind: JsonValueKind.Object } fn && new JsonFields(fn).String("name") is { } name)
            return name is "none" or "auto" or "required" ? throw ApiException.BadRequest($"tool_choice.function.name \"{name}\" is a keyword, not a function", "tool_choice") : name;
        throw JsonFields.Mistyped("tool_choice", "a string or {\"type\": \"function\", \"function\": {\"name\": ...}}", c);
    }
}
