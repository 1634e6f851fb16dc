using System.Text;

namespace Qwen2.Native.Text;

/// <summary>
/// Separates a thinking model's reasoning (<c>&lt;think&gt;</c> … <c>&lt;/think&gt;</c>, as Qwen3 writes it) from its
/// answer while the text streams in, so that neither tag ever reaches the answer, whatever the pieces' boundaries:
/// text that might be the start of a tag is held back until the next piece tells.
/// </summary>
/// <remarks>
/// Reasoning and answer come out as Qwen3's chat template reads an assistant turn back: the reasoning without the
/// newlines around it (<c>strip('\n')</c>), the answer without the newlines that follow <c>&lt;/think&gt;</c>
/// (<c>lstrip('\n')</c>). Output that does not open with <c>&lt;think&gt;</c> (after any newlines or spaces) is all
/// answer, as with thinking off; a prompt that already opened the block (<see cref="StartsInReasoning"/>) makes
/// everything up to <c>&lt;/think&gt;</c> reasoning. Reasoning that never closes stays reasoning. The first closing tag
/// ends the reasoning, as in vLLM's Qwen3 parser: a stream cannot wait for a later one (the template splits at the last).
/// </remarks>
public sealed class ReasoningSplitter
{
    /// <summary>The tag that opens the reasoning.</summary>
    public const string OpenTag = "<think>";
    /// <summary>The tag that closes it.</summary>
    public const string CloseTag = "</think>";

    private enum State { Start, LeadingReasoning, Reasoning, LeadingContent, Content }

    private readonly StringBuilder _held = new();
    private State _state;

    /// <summary>A splitter for output that begins outside any reasoning block, or inside one when <paramref name="startsInReasoning"/>.</summary>
    public ReasoningSplitter(bool startsInReasoning = false)
    {
        StartsInReasoning = startsInReasoning;
        _state = startsInReasoning ? State.LeadingReasoning : State.Start;
    }

    /// <summary>Whether the output was taken to begin inside a reasoning block (the prompt ended with an open <c>&lt;think&gt;</c>).</summary>
    public bool StartsInReasoning { get; }

    /// <summary>Whether the reasoning block has closed (or the output turned out to have none): what follows is answer.</summary>
    public bool InAnswer => _state is State.LeadingContent or State.Content;

    /// <summary>A splitter for the output that follows <paramref name="prompt"/>: inside reasoning when the prompt ends with an open <c>&lt;think&gt;</c>.</summary>
    public static ReasoningSplitter ForPrompt(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        string tail = prompt.TrimEnd('\n', ' ');
        return new ReasoningSplitter(tail.EndsWith(OpenTag, StringComparison.Ordinal));
    }

    /// <summary>Takes the next piece of output; returns the reasoning and answer text that is now certain.</summary>
    public ReasoningDelta Push(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        _held.Append(piece);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        while (Step(reasoning, content)) { }
        return new ReasoningDelta(reasoning.ToString(), content.ToString());
    }

    /// <summary>Ends the output: releases what was held back (a partial tag is text after all).</summary>
    public ReasoningDelta Flush()
    {
        string held = _held.ToString();
        _held.Clear();
        return _state switch
        {
            State.Start or State.LeadingContent or State.Content => new ReasoningDelta("", _state == State.LeadingContent ? "" : held),
            // Newlines held at the end of unfinished reasoning are dropped as the template strips them; a partial tag is kept.
            _ => new ReasoningDelta(held.TrimEnd('\n'), ""),
        };
    }

    // One move of the state machine over the held text; false when it must wait for more.
    private bool Step(StringBuilder reasoning, StringBuilder content)
    {
        string held = _held.ToString();
        switch (_state)
        {
            case State.Start:
            {
                string lead = held.TrimStart('\n', ' ');
                if (lead.StartsWith(OpenTag, StringComparison.Ordinal))
                {
                    Consume(held.Length - lead.Length + OpenTag.Length);
                    _state = State.LeadingReasoning;
                    return true;
                }
                if (OpenTag.StartsWith(lead, StringComparison.Ordinal)) return false; // "", "<", "<th": not yet known
                _state = State.Content;
                return true;
            }
            case State.LeadingReasoning:
            {
                int n = CountLeading(held, '\n');
                if (n == held.Length) { Consume(n); return false; }
                Consume(n);
                _state = State.Reasoning;
                return true;
            }
            case State.Reasoning:
            {
                int close = held.IndexOf(CloseTag, StringComparison.Ordinal);
                if (close >= 0)
                {
                    reasoning.Append(held.AsSpan(0, close).TrimEnd('\n'));
                    Consume(close + CloseTag.Length);
                    _state = State.LeadingContent;
                    return true;
                }
                // Keep a tail that may begin the closing tag, and trailing newlines that may precede it.
                int keep = PartialTagLength(held, CloseTag);
                int end = held.Length - keep;
                while (end > 0 && held[end - 1] == '\n') end--;
                reasoning.Append(held.AsSpan(0, end));
                Consume(end);
                return false;
            }
            case State.LeadingContent:
            {
                int n = CountLeading(held, '\n');
                Consume(n);
                if (n == held.Length) return false;
                _state = State.Content;
                return true;
            }
            default:
                content.Append(held);
                _held.Clear();
                return false;
        }
    }

    private void Consume(int count) => _held.Remove(0, count);

    private static int CountLeading(string s, char c)
    {
        int n = 0;
        while (n < s.Length && s[n] == c) n++;
        return n;
    }

    // The length of the longest suffix of text that is a proper prefix of tag.
    private static int PartialTagLength(string text, string tag)
    {
        for (int len = Math.Min(tag.Length - 1, text.Length); len > 0; len--)
            if (text.AsSpan(text.Length - len).SequenceEqual(tag.AsSpan(0, len))) return len;
        return 0;
    }
}
