using System.Buffers;
using System.Globalization;
using System.Text;

namespace Qwen2.Native.Text;

/// <summary>
/// Finds added tokens in text the way Hugging Face's AddedVocabulary does: non-overlapping, leftmost-longest matches
/// (its Aho-Corasick automaton uses MatchKind::LeftmostLongest), then single_word, lstrip and rstrip applied per match.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, (string Text, AddedToken Token)[]> _byFirstChar;

    /// <summary>A match: the token and the span of text it replaces (including stripped whitespace).</summary>
    public readonly record struct Match(int Start, int End, int Id);

    /// <param name="tokens">The tokens to find.</param>
    /// <param name="form">How a token's content appears in the searched text (normalized tokens are searched in normalized form).</param>
    public AddedTokenMatcher(IEnumerable<AddedToken> tokens, Func<string, string> form)
    {
        _byFirstChar = tokens
            .Select(t => (Text: form(t.Content), Token: t))
            .Where(p => p.Text.Length > 0)
            .GroupBy(p => p.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Text.Length).ToArray());
    }

    public List<Match> Find(string text)
    {
        var matches = new List<Match>();
        if (_byFirstChar.Count == 0) return matches;
        int startOffset = 0; // end of the previous match, as HF's start_offset
        for (int i = 0; i < text.Length;)
        {
            if (!_byFirstChar.TryGetValue(text[i], out var candidates) || Longest(text, i, candidates) is not { } found) { i++; continue; }
            var (content, token) = found;
            int start = i, stop = i + content.Length;
            i = stop; // the automaton resumes after the raw match, whatever happens to it below
            if (token.SingleWord && ((start > 0 && IsWordChar(text, start, before: true)) || (stop < text.Length && IsWordChar(text, stop, before: false))))
                continue;
            if (token.LStrip)
            {
                int s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                start = Math.Max(s, startOffset);
            }
            if (token.RStrip)
            {
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
                i = Math.Max(i, stop);
            }
            matches.Add(new Match(start, stop, token.Id));
            startOffset = stop;
        }
        return matches;
    }

    private static (string, AddedToken)? Longest(string text, int at, (string Text, AddedToken Token)[] candidates)
    {
        foreach (var c in candidates) // longest first
            if (at + c.Text.Length <= text.Length && string.CompareOrdinal(text, at, c.Text, 0, c.Text.Length) == 0) return c;
        return null;
    }

    /// <summary>
    /// HF's ends_with_word / starts_with_word: the neighbouring character matches Rust regex's Unicode <c>\w</c>,
    /// i.e. Alphabetic, a mark, a decimal digit, connector punctuation or a join control.
    /// </summary>
    private static bool IsWordChar(string text, int boundary, bool before)
    {
        var status = before
            ? Rune.DecodeLastFromUtf16(text.AsSpan(0, boundary), out var r, out _)
            : Rune.DecodeFromUtf16(text.AsSpan(boundary), out r, out _);
        if (status != OperationStatus.Done) return false;
        int cp = r.Value;
        // Join controls, and the enclosed letters that are So but Alphabetic (Other_Alphabetic).
        if (cp is 0x200C or 0x200D or (>= 0x24B6 and <= 0x24E9) or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189))
            return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation;
    }
}
