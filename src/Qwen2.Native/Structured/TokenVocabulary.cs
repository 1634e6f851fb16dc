using System.Runtime.CompilerServices;
using Qwen2.Native.Text;

namespace Qwen2.Native.Structured;

/// <summary>
/// A tokenizer's vocabulary as the JSON matcher sees it, built once per tokenizer: each token's bytes (none for
/// special and added tokens, which never appear inside JSON), the tokens in byte order with the prefix each shares
/// with the one before (a trie walked in order: a mask steps the matcher once per distinct prefix), and the tokens
/// that are plain string characters, which a string accepts by their character count alone.
/// </summary>
internal sealed class TokenVocabulary
{
    private static readonly ConditionalWeakTable<Qwen2Tokenizer, TokenVocabulary> Cache = new();

    private TokenVocabulary(Qwen2Tokenizer tokenizer, int size)
    {
        Size = size;
        Bytes = new byte[size][];
        PlainChars = new short[size];
        var added = new bool[size];
        foreach (var a in tokenizer.AddedTokens) if ((uint)a.Id < (uint)size) added[a.Id] = true;
        var eligible = new List<int>(size);
        var plainIds = new List<int>();
        for (int id = 0; id < size; id++)
        {
            var bytes = added[id] || tokenizer.IsSpecial(id) ? [] : tokenizer.TokenBytesOrEmpty(id).ToArray();
            Bytes[id] = bytes;
            PlainChars[id] = bytes.Length == 0 ? (short)-1 : PlainCount(bytes);
            if (bytes.Length == 0) continue;
            eligible.Add(id);
            if (PlainChars[id] > 0) plainIds.Add(id);
            MaxTokenBytes = Math.Max(MaxTokenBytes, bytes.Length);
        }
        (Sorted, SortedLcp) = Trie(eligible);
        (Special, SpecialLcp) = Trie(eligible.Where(id => PlainChars[id] < 0).ToList());
        Plain = plainIds.ToArray();
    }

    /// <summary>The vocabulary of <paramref name="tokenizer"/> over <paramref name="size"/> logits (a model may pad its vocabulary).</summary>
    public static TokenVocabulary For(Qwen2Tokenizer tokenizer, int size)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var v = Cache.GetValue(tokenizer, t => new TokenVocabulary(t, size));
        return v.Size == size ? v : new TokenVocabulary(tokenizer, size);
    }

    public int Size { get; }
    /// <summary>Each id's bytes; empty for ids JSON never contains.</summary>
    public byte[][] Bytes { get; }
    /// <summary>Code points of a token made only of plain string characters (no quote, backslash or control, whole UTF-8 characters); -1 otherwise.</summary>
    public short[] PlainChars { get; }
    /// <summary>Ids with PlainChars &gt; 0.</summary>
    public int[] Plain { get; }
    /// <summary>Every id with bytes, in byte order; SortedLcp[k]: bytes shared with Sorted[k - 1].</summary>
    public int[] Sorted { get; }
    public int[] SortedLcp { get; }
    /// <summary>The ids with bytes that are not plain, in byte order, and their shared prefixes.</summary>
    public int[] Special { get; }
    public int[] SpecialLcp { get; }
    public int MaxTokenBytes { get; }

    private (int[] Ids, int[] Lcp) Trie(List<int> ids)
    {
        var sorted = ids.ToArray();
        var bytes = Bytes;
        Array.Sort(sorted, (a, b) => bytes[a].AsSpan().SequenceCompareTo(bytes[b]));
        var lcp = new int[sorted.Length];
        for (int k = 1; k < sorted.Length; k++) lcp[k] = bytes[sorted[k]].AsSpan().CommonPrefixLength(bytes[sorted[k - 1]]);
        return (sorted, lcp);
    }

    private static short PlainCount(byte[] bytes)
    {
        int chars = 0;
        for (int i = 0; i < bytes.Length;)
        {
            byte b = bytes[i];
            if (b < 0x80)
            {
                if (b < 0x20 || b == '"' || b == '\\') return -1;
                i++;
            }
            else
            {
                if (!Frame.Utf8Lead(b, out int need, out byte lo, out byte hi) || i + need >= bytes.Length) return -1; // split character
                if (bytes[i + 1] < lo || bytes[i + 1] > hi) return -1;
                for (int j = 2; j <= need; j++) if (bytes[i + j] < 0x80 || bytes[i + j] > 0xBF) return -1;
                i += need + 1;
            }
            chars++;
        }
        return (short)Math.Min(chars, short.MaxValue);
    }
}
