using System.Text;

namespace Qwen2.Native.Generation;

/// <summary>
/// Finds stop strings in streamed text. Text is released only once no stop string can start in it, so a stop string
/// split across tokens is never half-printed; the stop string and anything after it are dropped.
/// </summary>
internal sealed class StopStringMatcher(IReadOnlyList<string> stops)
{
    private readonly StringBuilder _held = new();

    /// <summary>Adds text; returns what can be released and whether a stop string was reached.</summary>
    public (string Ready, bool Hit) Push(string text)
    {
        if (stops.Count == 0) return (text, false);
        _held.Append(text);
        string held = _held.ToString();
        int first = -1;
        foreach (var s in stops)
        {
            int at = held.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0)
        {
            _held.Clear();
            return (held[..first], true);
        }
        // Keep the longest tail that is a proper prefix of some stop string.
        int keep = 0;
        foreach (var s in stops)
            for (int len = Math.Min(s.Length - 1, held.Length); len > keep; len--)
                if (held.AsSpan(held.Length - len).SequenceEqual(s.AsSpan(0, len))) { keep = len; break; }
        _held.Clear().Append(held, held.Length - keep, keep);
        return (held[..^keep], false);
    }

    /// <summary>Releases what is held at the end of generation.</summary>
    public string Drain()
    {
        string s = _held.ToString();
        _held.Clear();
        return s;
    }
}
