using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Qwen2.Native.Text;

/// <summary>
/// The ChatML layout Qwen models are trained on, as the checkpoint's Jinja <c>chat_template</c> renders it for plain
/// conversations (system, user and assistant messages) and, for Qwen2.5's and Qwen3's templates, tool calling (function
/// definitions, calls and results). It is not a Jinja engine: the family and its default system prompt are read from
/// the template text, and the layout is written here, checked against jinja2 running the real templates.
/// </summary>
public sealed partial class ChatTemplate
{
    private const string ImStart = "<|im_start|>", ImEnd = "<|im_end|>";

    private ChatTemplate(ChatTemplateFamily family, string? defaultSystemPrompt)
    {
        Family = family;
        DefaultSystemPrompt = defaultSystemPrompt;
    }

    /// <summary>The family the template belongs to.</summary>
    public ChatTemplateFamily Family { get; }

    /// <summary>
    /// A splitter that takes the reasoning apart from the answer in the reply to <paramref name="prompt"/> (this
    /// template's rendering), for a family that reasons (Qwen3's <c>&lt;think&gt;</c> block); null for one that does not.
    /// </summary>
    public ReasoningSplitter? ReasoningSplitterFor(string prompt) => Family == ChatTemplateFamily.Qwen3 ? ReasoningSplitter.ForPrompt(prompt) : null;

    /// <summary>The system prompt the template inserts when a conversation has none (null: it inserts nothing).</summary>
    public string? DefaultSystemPrompt { get; }

    /// <summary>Qwen2.5's template.</summary>
    public static ChatTemplate Qwen25 { get; } = new(ChatTemplateFamily.Qwen25, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");

    /// <summary>
    /// Recognizes the Jinja <paramref name="template"/> of a tokenizer_config.json. Throws for a template that is not
    /// ChatML, since rendering it as ChatML would silently change what the model sees.
    /// </summary>
    /// <exception cref="NotSupportedException">The template is missing or is not a ChatML template.</exception>
    public static ChatTemplate Parse(string? template, string source = "tokenizer_config.json")
    {
        if (string.IsNullOrEmpty(template))
            throw new NotSupportedException($"{source} has no chat_template; pass raw text (qwen2 generate --raw) or use an instruct checkpoint");
        if (!template.Contains(ImStart, StringComparison.Ordinal) || !template.Contains(ImEnd, StringComparison.Ordinal))
            throw new NotSupportedException($"{source}: chat_template is not a ChatML (<|im_start|> ... <|im_end|>) template; only Qwen's ChatML templates are supported. Pass raw text instead (--raw)");
        // The default system message is a literal in the template: '<|im_start|>system\n...<|im_end|>\n'.
        var m = DefaultSystemLiteral().Match(template);
        string? system = m.Success ? Unescape(m.Groups["text"].Value) : null;
        var family = template.Contains("<think>", StringComparison.Ordinal) ? ChatTemplateFamily.Qwen3
            : system is null ? ChatTemplateFamily.ChatMl
            : system.StartsWith("You are Qwen, created by Alibaba Cloud", StringComparison.Ordinal) ? ChatTemplateFamily.Qwen25
            : ChatTemplateFamily.Qwen2;
        if (family == ChatTemplateFamily.Qwen3) system = null;
        return new ChatTemplate(family, system);
    }

    [GeneratedRegex(@"'<\|im_start\|>system\\n(?<text>(?:[^'\\]|\\.)*?)<\|im_end\|>\\n'")]
    private static partial Regex DefaultSystemLiteral();

    private static string Unescape(string jinjaLiteral)
    {
        var sb = new StringBuilder(jinjaLiteral.Length);
        for (int i = 0; i < jinjaLiteral.Length; i++)
        {
            char c = jinjaLiteral[i];
            if (c != '\\' || i + 1 == jinjaLiteral.Length) { sb.Append(c); continue; }
            char e = jinjaLiteral[++i];
            sb.Append(e switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => e });
        }
        return sb.ToString();
    }

    /// <summary>
    /// Renders <paramref name="messages"/> as the template does with <c>add_generation_prompt</c>: a system message
    /// first (the given one, else the default), each message as <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>,
    /// then <c>&lt;|im_start|&gt;assistant\n</c> when <paramref name="addGenerationPrompt"/>. With
    /// <paramref name="tools"/>, Qwen2.5's and Qwen3's templates write the function signatures into the system turn
    /// (each as transformers' <c>tojson</c> prints it); an assistant message's <see cref="ChatMessage.ToolCalls"/>
    /// follow its text as <c>&lt;tool_call&gt;</c> blocks, and tool messages become <c>&lt;tool_response&gt;</c> blocks of
    /// one user turn.
    /// </summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Open an assistant turn at the end.</param>
    /// <param name="enableThinking">Qwen3 only: false writes an empty think block so the model answers directly.</param>
    /// <param name="tools">Function definitions in OpenAI's form (<c>{"type": "function", "function": {"name", "description", "parameters"}}</c>); null or empty for none.</param>
    /// <exception cref="ArgumentException">A role other than system, user, assistant or tool, or a tool call whose arguments are not JSON.</exception>
    /// <exception cref="NotSupportedException">Tools, tool calls or tool messages for a template without tool calling (Qwen2's, plain ChatML).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool enableThinking = true, IReadOnlyList<JsonElement>? tools = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        bool withTools = tools is { Count: > 0 };
        if (withTools) RequireTools("tool definitions");
        var sb = new StringBuilder();
        int lastQuery = LastQuery(messages);
        int start = 0;
        if (withTools)
        {
            // The tools' system turn holds the conversation's system message, if it opens with one (then not written again).
            bool system = messages.Count > 0 && messages[0] is { Role: "system" };
            sb.Append(ImStart).Append("system\n");
            if (system) sb.Append(messages[0].Content).Append("\n\n");
            else if (DefaultSystemPrompt is not null) sb.Append(DefaultSystemPrompt).Append("\n\n");
            sb.Append(ToolsPreamble);
            foreach (var tool in tools!) sb.Append('\n').Append(PythonJson.Dumps(tool));
            sb.Append(ToolsInstructions);
            if (system) start = 1;
        }
        for (int i = start; i < messages.Count; i++)
        {
            var msg = messages[i] ?? throw new ArgumentException($"message {i} is null", nameof(messages));
            CheckRole(msg, i);
            if (i == 0 && msg.Role != "system" && DefaultSystemPrompt is not null && !withTools) AppendMessage(sb, "system", DefaultSystemPrompt);
            string content = msg.Content ?? "";
            switch (msg.Role)
            {
                case "tool":
                    RequireTools("tool messages");
                    if (i == 0 || messages[i - 1]?.Role != "tool") sb.Append(ImStart).Append("user");
                    sb.Append("\n<tool_response>\n").Append(content).Append("\n</tool_response>");
                    if (i == messages.Count - 1 || messages[i + 1]?.Role != "tool") sb.Append(ImEnd).Append('\n');
                    break;
                case "assistant" when msg.ToolCalls is { Count: > 0 } calls:
                    RequireTools("tool calls");
                    AppendToolCalls(sb, Family == ChatTemplateFamily.Qwen3 ? Qwen3Assistant(content, i > lastQuery, i == messages.Count - 1) : content, calls);
                    break;
                case "assistant" when Family == ChatTemplateFamily.Qwen3:
                    AppendMessage(sb, "assistant", Qwen3Assistant(content, i > lastQuery, i == messages.Count - 1));
                    break;
                default:
                    AppendMessage(sb, msg.Role, content);
                    break;
            }
        }
        if (addGenerationPrompt) AppendGenerationPrompt(sb, enableThinking);
        return sb.ToString();
    }

    private const string ToolsPreamble = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    private const string ToolsInstructions = "\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
        "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";

    /// <summary>Whether the template writes tool definitions, calls and results (Qwen2.5's and Qwen3's do).</summary>
    public bool SupportsTools => Family is ChatTemplateFamily.Qwen25 or ChatTemplateFamily.Qwen3;

    private void RequireTools(string what)
    {
        if (!SupportsTools)
            throw new NotSupportedException($"the {Family} chat template has no tool calling, so {what} cannot be rendered as the model was trained to read them; use a Qwen2.5 or Qwen3 checkpoint");
    }

    /// <summary>
    /// An assistant turn that calls functions. Qwen2.5 writes "\n" + the text when there is any, then "\n&lt;tool_call&gt;…"
    /// per call; Qwen3 writes "\n" + the text, then the calls separated by "\n" (and from non-empty text). Arguments go
    /// through tojson, as vLLM renders OpenAI's string arguments once parsed.
    /// </summary>
    private void AppendToolCalls(StringBuilder sb, string content, IReadOnlyList<ToolCall> calls)
    {
        sb.Append(ImStart).Append("assistant");
        bool qwen3 = Family == ChatTemplateFamily.Qwen3;
        if (qwen3) sb.Append('\n').Append(content);
        else if (content.Length > 0) sb.Append('\n').Append(content);
        for (int c = 0; c < calls.Count; c++)
        {
            var call = calls[c] ?? throw new ArgumentException($"tool call {c} is null", "messages");
            if (!qwen3 || c > 0 || content.Length > 0) sb.Append('\n');
            sb.Append("<tool_call>\n{\"name\": \"").Append(call.Name).Append("\", \"arguments\": ")
              .Append(PythonJson.Dumps(call.ParsedArguments())).Append("}\n</tool_call>");
        }
        sb.Append(ImEnd).Append('\n');
    }

    /// <summary>
    /// The text that continues a conversation whose context already holds an assistant reply: the reply's closing
    /// (<c>&lt;|im_end|&gt;</c> only when <paramref name="replyClosed"/> is false, then the newline), the new
    /// <paramref name="message"/>, and the generation prompt. Appending it to the cached tokens gives what
    /// <see cref="Render"/> of the whole conversation would, without recomputing it.
    /// </summary>
    public string RenderContinuation(ChatMessage message, bool replyClosed, bool enableThinking = true)
    {
        ArgumentNullException.ThrowIfNull(message);
        CheckRole(message, 1);
        var sb = new StringBuilder();
        if (!replyClosed) sb.Append(ImEnd);
        sb.Append('\n');
        AppendMessage(sb, message.Role, message.Content ?? "");
        AppendGenerationPrompt(sb, enableThinking);
        return sb.ToString();
    }

    private static void CheckRole(ChatMessage msg, int index)
    {
        if (msg.Role is not ("system" or "user" or "assistant" or "tool"))
            throw new ArgumentException($"message {index} has role \"{msg.Role}\"; the chat template supports system, user, assistant and tool", "messages");
        // A system message later in the conversation is written where it stands, as every Qwen template writes it.
    }

    private void AppendGenerationPrompt(StringBuilder sb, bool enableThinking)
    {
        sb.Append(ImStart).Append("assistant\n");
        if (Family == ChatTemplateFamily.Qwen3 && !enableThinking) sb.Append("<think>\n\n</think>\n\n");
    }

    private static void AppendMessage(StringBuilder sb, string role, string content) =>
        sb.Append(ImStart).Append(role).Append('\n').Append(content).Append(ImEnd).Append('\n');

    // Qwen3's last_query_index: the last user message that is not a tool response; the last message when there is none.
    private static int LastQuery(IReadOnlyList<ChatMessage> messages)
    {
        for (int i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i] is not { Role: "user" } m) continue;
            string c = m.Content ?? "";
            if (!(c.StartsWith("<tool_response>", StringComparison.Ordinal) && c.EndsWith("</tool_response>", StringComparison.Ordinal))) return i;
        }
        return messages.Count - 1;
    }

    /// <summary>
    /// An assistant turn as Qwen3's template writes it: the reasoning (between <c>&lt;think&gt;</c> and the first
    /// <c>&lt;/think&gt;</c>) and the answer (after the last) taken apart; turns up to the last query keep only the
    /// answer, later ones are written back with their think block (always for the last message, else when it has
    /// reasoning).
    /// </summary>
    private static string Qwen3Assistant(string content, bool afterLastQuery, bool last)
    {
        const string Open = "<think>", Close = "</think>";
        string reasoning = "";
        int first = content.IndexOf(Close, StringComparison.Ordinal);
        if (first >= 0)
        {
            string before = content[..first].TrimEnd('\n');
            int open = before.LastIndexOf(Open, StringComparison.Ordinal);
            reasoning = (open < 0 ? before : before[(open + Open.Length)..]).TrimStart('\n');
            content = content[(content.LastIndexOf(Close, StringComparison.Ordinal) + Close.Length)..].TrimStart('\n');
        }
        if (afterLastQuery && (last || reasoning.Length > 0))
            return "<think>\n" + reasoning.Trim('\n') + "\n</think>\n\n" + content.TrimStart('\n');
        return content;
    }
}
