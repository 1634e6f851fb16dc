using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen2.Native.Structured;
using Qwen2.Native.Text;
using ChatMessage = Qwen2.Native.Text.ChatMessage;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen2.Native.Chat;

/// <summary>What <see cref="Qwen2ChatClient"/> hands the template and the generator: messages, tools, a forced call, a response format.</summary>
internal static class ChatClientMessages
{
    /// <summary>The conversation as the template takes it: text of system, user and assistant messages.</summary>
    public static List<ChatMessage> ToTemplateMessages(IEnumerable<AIChatMessage> messages, string? instructions)
    {
        var result = new List<ChatMessage>();
        int index = 0;
        foreach (var m in messages)
        {
            if (m is null) throw new ArgumentException($"message {index} is null", nameof(messages));
            string role = m.Role == ChatRole.System ? "system"
                : m.Role == ChatRole.User ? "user"
                : m.Role == ChatRole.Assistant ? "assistant"
                : m.Role == ChatRole.Tool ? "tool"
                : throw new NotSupportedException($"message {index} has role \"{m.Role}\"; Qwen2ChatClient supports system, user, assistant and tool messages");
            var text = new StringBuilder();
            var calls = new List<ToolCall>();
            foreach (var content in m.Contents)
            {
                switch (content)
                {
                    case TextContent t: text.Append(t.Text); break;
                    // Metadata and reasoning, not conversation: Qwen's templates drop earlier reasoning too.
                    case UsageContent or TextReasoningContent or ErrorContent: break;
                    case FunctionCallContent call: calls.Add(new ToolCall(call.Name, Arguments(call.Arguments), call.CallId)); break;
                    // Each result is its own tool message: the template writes consecutive ones into one user turn.
                    case FunctionResultContent r:
                        result.Add(ChatMessage.Tool(ResultText(r.Result)));
                        break;
                    default:
                        throw new NotSupportedException($"message {index} holds {content?.GetType().Name ?? "null"} content; Qwen2ChatClient handles text, function calls and function results");
                }
            }
            if (role != "tool" || text.Length > 0) result.Add(new ChatMessage(role, text.ToString()) { ToolCalls = calls.Count > 0 ? calls : null });
            index++;
        }
        if (result.Count == 0) throw new ArgumentException("the conversation has no messages", nameof(messages));
        if (!string.IsNullOrEmpty(instructions))
        {
            // The template takes one system message, first: the instructions open it.
            if (result[0].Role == "system") result[0] = result[0] with { Content = instructions + "\n\n" + result[0].Content };
            else result.Insert(0, ChatMessage.System(instructions));
        }
        return result;
    }

    /// <summary>A call's arguments as the JSON object text templates and OpenAI's API carry.</summary>
    private static string Arguments(IDictionary<string, object?>? arguments) =>
        arguments is null ? "{}" : JsonSerializer.Serialize(arguments, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>)));

    /// <summary>A function's result as the model reads it: text as is, anything else as JSON.</summary>
    private static string ResultText(object? result) => result switch
    {
        null => "",
        string s => s,
        JsonElement e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText(),
        _ => JsonSerializer.Serialize(result, AIJsonUtilities.DefaultOptions.GetTypeInfo(result.GetType())),
    };

    /// <summary>
    /// <see cref="ChatOptions.Tools"/> as the template writes them (OpenAI's form: type, then the function's name,
    /// description and parameter schema), or null when there are none or <see cref="ChatOptions.ToolMode"/> is none.
    /// </summary>
    public static IReadOnlyList<JsonElement>? ToolDefinitions(ChatOptions? options, ChatTemplate template)
    {
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode)
            return options?.ToolMode is RequiredChatToolMode ? throw new ArgumentException("ChatOptions.ToolMode requires a call, but ChatOptions.Tools is empty", nameof(options)) : null;
        if (!template.SupportsTools)
            throw new NotSupportedException($"ChatOptions.Tools: the {template.Family} chat template has no tool calling; use a Qwen2.5 or Qwen3 checkpoint");
        var result = new List<JsonElement>(tools.Count);
        foreach (var tool in tools)
        {
            if (tool is not AIFunctionDeclaration f)
                throw new NotSupportedException($"ChatOptions.Tools holds {tool?.GetType().Name ?? "null"}; Qwen2ChatClient runs functions (AIFunction, AIFunctionDeclaration) only");
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", f.Name);
                if (!string.IsNullOrEmpty(f.Description)) w.WriteString("description", f.Description);
                w.WritePropertyName("parameters");
                f.JsonSchema.WriteTo(w);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            using var doc = JsonDocument.Parse(buffer.ToArray());
            result.Add(doc.RootElement.Clone());
        }
        return result;
    }

    /// <summary>
    /// The tools a call is forced to (<see cref="ChatToolMode.RequireAny"/>: all; <c>RequireSpecific(name)</c>: that
    /// one), or null when the model may answer in text.
    /// </summary>
    public static IReadOnlyList<JsonElement>? ForcedTools(ChatOptions? options, IReadOnlyList<JsonElement>? tools)
    {
        if (options?.ToolMode is not RequiredChatToolMode required || tools is null) return null;
        if (required.RequiredFunctionName is not { } name) return tools;
        var named = tools.Where(t => t.GetProperty("function").GetProperty("name").GetString() == name).ToArray();
        return named.Length > 0 ? named : throw new ArgumentException($"ChatOptions.ToolMode requires {name}, which ChatOptions.Tools does not hold", nameof(options));
    }

    /// <summary>ChatOptions.ResponseFormat as constrained decoding: JSON (an object), or JSON valid for a schema.</summary>
    public static ResponseFormat ResponseFormatOf(ChatOptions options) => options.ResponseFormat switch
    {
        null or ChatResponseFormatText => ResponseFormat.Text,
        ChatResponseFormatJson { Schema: { } schema } => ResponseFormat.JsonSchema(schema),
        ChatResponseFormatJson => ResponseFormat.JsonObject,
        var other => throw new NotSupportedException($"ChatOptions.ResponseFormat {other.GetType().Name} is not supported"),
    };
}
