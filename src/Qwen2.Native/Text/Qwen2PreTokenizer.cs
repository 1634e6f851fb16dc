using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace Qwen2.Native.Text;

/// <summary>
/// The Qwen2 split pattern
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>
/// as a hand-written scanner over Unicode scalar values.
/// </summary>
/// <remarks>
/// Written by hand rather than with <see cref="RegexPreTokenizer"/> because .NET's <c>Regex</c> classifies UTF-16 code
/// units: astral letters and digits (𝐇, 𠮷, 𝟏) are surrogate pairs whose halves are category Cs, so <c>\p{L}</c> and
/// <c>\p{N}</c> miss them and pieces split between the halves. Hugging Face's tokenizers (Oniguruma over UTF-8) classify
/// whole code points. Every position matches some alternative, so Split(Isolated) leaves no gaps and the matches alone are the pieces.
/// </remarks>
internal sealed class Qwen2PreTokenizer : PreTokenizer
{
    /// <summary>The split pattern this scanner implements, as written in Qwen's tokenizer.json.</summary>
    internal const string Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    internal static readonly Qwen2PreTokenizer Instance = new();

    private const byte Other = 0, Letter = 1, Number = 2, Space = 3, NewLine = 4; // Space: White_Space other than \r and \n

    private static readonly byte[] AsciiKinds = BuildAsciiKinds();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => text is null ? [] : Split(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    /// <summary>The pieces of <paramref name="text"/> as (char offset, char length), in order, covering all of it.</summary>
    internal static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int, int)>();
        if (text.IsEmpty) return pieces;

        // Decode once into scalar values so every rule below indexes code points, never surrogate halves.
        int n = 0;
        var cps = new int[text.Length];
        var kinds = new byte[text.Length];
        var starts = new int[text.Length + 1];
        for (int i = 0; i < text.Length;)
        {
            int cp;
            char c = text[i];
            if (c < 0x80) { cp = c; kinds[n] = AsciiKinds[c]; starts[n] = i; i++; }
            else
            {
                Rune.DecodeFromUtf16(text[i..], out var rune, out int used); // a lone surrogate decodes as U+FFFD
                cp = rune.Value; kinds[n] = KindOf(cp); starts[n] = i; i += used;
            }
            cps[n++] = cp;
        }
        starts[n] = text.Length;

        for (int i = 0; i < n;)
        {
            int end = Match(cps, kinds, n, i);
            pieces.Add((starts[i], starts[end] - starts[i]));
            i = end;
        }
        return pieces;
    }

    /// <summary>End (exclusive, in code points) of the pattern's match at <paramref name="i"/>; alternatives in pattern order.</summary>
    private static int Match(int[] cps, byte[] k, int n, int i)
    {
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (cps[i] == '\'' && i + 1 < n)
        {
            int a = cps[i + 1];
            if (IsFold(a, 's') || IsFold(a, 't') || IsFold(a, 'm') || IsFold(a, 'd')) return i + 2;
            if (i + 2 < n)
            {
                int b = cps[i + 2];
                if ((IsFold(a, 'r') && IsFold(b, 'e')) || (IsFold(a, 'v') && IsFold(b, 'e')) || (IsFold(a, 'l') && IsFold(b, 'l'))) return i + 3;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (k[i] == Letter) return Run(k, n, i + 1, Letter);
        if ((k[i] == Other || k[i] == Space) && i + 1 < n && k[i + 1] == Letter) return Run(k, n, i + 2, Letter);
        // \p{N}
        if (k[i] == Number) return i + 1;
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if (cps[i] == ' ' && i + 1 < n && k[i + 1] == Other) return Run(k, n, Run(k, n, i + 2, Other), NewLine);
        if (k[i] == Other) return Run(k, n, Run(k, n, i + 1, Other), NewLine);

        // What is left starts with whitespace.
        int j = i;
        int lastNewLine = -1;
        while (j < n && k[j] >= Space) { if (k[j] == NewLine) lastNewLine = j; j++; }
        // \s*[\r\n]+ : backtracking ends the match just after the run's last \r or \n.
        if (lastNewLine >= 0) return lastNewLine + 1;
        // \s+(?!\S) : all of the run at the end of text, else all but the last, which then starts the next piece.
        if (j == n) return j;
        if (j - 1 > i) return j - 1;
        // \s+
        return j;
    }

    private static int Run(byte[] k, int n, int j, byte kind)
    {
        while (j < n && k[j] == kind) j++;
        return j;
    }

    /// <summary>
    /// Case-insensitive comparison with an ASCII letter under Unicode simple case folding, where U+017F LATIN SMALL
    /// LETTER LONG S also folds to 's'. For Qwen's vocabulary that case cannot change ids (no token joins 'ſ' with
    /// another character); upper case ("'LL") does, and the parity tests catch it.
    /// </summary>
    private static bool IsFold(int cp, char lower) => cp == lower || cp == lower - 32 || (lower == 's' && cp == 0x17F);

    private static byte KindOf(int cp)
    {
        if (IsWhiteSpace(cp)) return cp is '\r' or '\n' ? NewLine : Space;
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
            _ => Other,
        };
    }

    /// <summary>The Unicode White_Space property, which is what <c>\s</c> means to Oniguruma and Rust's regex.</summary>
    internal static bool IsWhiteSpace(int cp) => cp is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680
        or (>= 0x2000 and <= 0x200A) or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    private static byte[] BuildAsciiKinds()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++) t[c] = KindOf(c);
        return t;
    }
}
