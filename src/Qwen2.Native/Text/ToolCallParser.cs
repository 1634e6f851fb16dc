using System.Text;
using System.Text.Json;

namespace Qwen2.Native.Text;

/// <summary>
/// Takes the function calls out of a Qwen model's output while it streams: text before a call streams as text; a
/// <c>&lt;tool_call&gt;</c> … <c>&lt;/tool_call&gt;</c> block is held until it closes (its tags may be split across
/// tokens anywhere), then comes out as a call, <c>{"name": …, "arguments": {…}}</c> as Qwen's templates teach, with a
/// fresh id. A malformed block is reported with its text and the reason, never dropped.
/// </summary>
/// <remarks>
/// Whitespace is held back until it is known to sit between text: the newlines the model writes around and between
/// its calls are not answer text (as vLLM's Hermes parser leaves them out); text without calls comes out whole.
/// </remarks>
public sealed class ToolCallParser
{
    /// <summary>The tag that opens a call.</summary>
    public const string OpenTag = "<tool_call>";
    /// <summary>The tag that closes it.</summary>
    public const string CloseTag = "</tool_call>";

    private readonly StringBuilder _held = new();
    private readonly Func<string> _newId;
    private bool _inCall, _sawCall, _afterCall;
    private string _space = "";

    private readonly bool _forced;

    /// <summary>A parser; <paramref name="newId"/> makes call ids (by default OpenAI's form, <c>call_</c> and 24 hex digits).</summary>
    /// <param name="newId">Makes call ids.</param>
    /// <param name="insideCall">
    /// The prompt already opened a block (a forced call: it ends with <see cref="OpenTag"/>): the output begins inside
    /// it, and its end closes it.
    /// </param>
    public ToolCallParser(Func<string>? newId = null, bool insideCall = false)
    {
        _newId = newId ?? (() => "call_" + Guid.NewGuid().ToString("N")[..24]);
        _inCall = _forced = insideCall;
    }

    /// <summary>Takes the next piece of output; returns the text and calls that are now certain.</summary>
    public ToolCallDelta Push(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        _held.Append(piece);
        var text = new StringBuilder();
        var calls = new List<ParsedToolCall>();
        while (true)
        {
            string held = _held.ToString();
            if (_inCall)
            {
                int close = held.IndexOf(CloseTag, StringComparison.Ordinal);
                if (close < 0) break;
                calls.Add(Parse(OpenTag + held[..(close + CloseTag.Length)], held[..close]));
                _held.Remove(0, close + CloseTag.Length);
                _inCall = false;
                _sawCall = _afterCall = true;
                continue;
            }
            int open = held.IndexOf(OpenTag, StringComparison.Ordinal);
            if (open >= 0)
            {
                Emit(text, held[..open], beforeCall: true);
                _held.Remove(0, open + OpenTag.Length);
                _inCall = true;
                continue;
            }
            // Hold any tail that could still become the opening tag.
            int keep = PartialTagLength(held);
            Emit(text, held[..^keep], beforeCall: false);
            _held.Remove(0, held.Length - keep);
            break;
        }
        return new ToolCallDelta(text.ToString(), calls);
    }

    /// <summary>Ends the output: held text comes out; a call left open is reported as malformed.</summary>
    public ToolCallDelta Flush()
    {
        string held = _held.ToString();
        _held.Clear();
        if (_inCall)
        {
            _inCall = false;
            if (_forced && !_sawCall) return new ToolCallDelta("", [Parse(OpenTag + held + CloseTag, held)]);
            return new ToolCallDelta("", [new ParsedToolCall(null, OpenTag + held, $"the call was never closed ({CloseTag} missing)")]);
        }
        var text = new StringBuilder();
        Emit(text, held, beforeCall: false);
        // Trailing whitespace is the model's, and kept, unless it only follows a call.
        if (!_sawCall) text.Append(_space);
        _space = "";
        return new ToolCallDelta(text.ToString(), []);
    }

    /// <summary>
    /// Appends text, holding its trailing whitespace until non-space text follows. Whitespace right before a call, and
    /// right after one, is dropped: it separates the blocks.
    /// </summary>
    private void Emit(StringBuilder text, string s, bool beforeCall)
    {
        if (_afterCall)
        {
            s = s.TrimStart();
            if (s.Length > 0) _afterCall = false;
        }
        int end = s.Length;
        while (end > 0 && char.IsWhiteSpace(s[end - 1])) end--;
        if (end > 0)
        {
            text.Append(_space).Append(s, 0, end);
            _space = s[end..];
        }
        else _space += s;
        if (beforeCall) _space = "";
    }

    private static int PartialTagLength(string held)
    {
        for (int n = Math.Min(OpenTag.Length - 1, held.Length); n > 0; n--)
            if (OpenTag.AsSpan(0, n).SequenceEqual(held.AsSpan(held.Length - n))) return n;
        return 0;
    }

    private ParsedToolCall Parse(string raw, string body)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body.Trim());
        }
        catch (JsonException e)
        {
            return new ParsedToolCall(null, raw, $"the call is not JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return new ParsedToolCall(null, raw, $"the call is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not an object");
            if (!root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString() is not { Length: > 0 } n)
                return new ParsedToolCall(null, raw, "the call has no \"name\" string");
            string arguments;
            if (!root.TryGetProperty("arguments", out var args) || args.ValueKind == JsonValueKind.Null) arguments = "{}";
            else if (args.ValueKind == JsonValueKind.Object) arguments = args.GetRawText();
            else if (args.ValueKind == JsonValueKind.String && IsObject(args.GetString()!)) arguments = args.GetString()!;
            else return new ParsedToolCall(null, raw, $"the arguments of {n} are a JSON {args.ValueKind.ToString().ToLowerInvariant()}, not an object");
            return new ParsedToolCall(new ToolCall(n, arguments, _newId()), raw, null);
        }
    }

    private static bool IsObject(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
