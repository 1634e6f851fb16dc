using System.Collections;
using System.Runtime.InteropServices;
using Qwen2.Native.Structured;

namespace Qwen2.Native.Generation;

/// <summary>
/// The tokens of one sequence, in a buffer that grows by doubling (so a decode step appends without allocating), and
/// the distinct ids among them, which the repetition penalty sees. Not thread-safe.
/// </summary>
internal sealed class TokenHistory : IReadOnlyList<int>
{
    // A flag per vocabulary id and the list of those set: membership in O(1), the set as a span for the sampler.
    private readonly bool[] _seen;
    private readonly List<int> _distinct = [];
    private int[] _tokens;
    private int _count;

    /// <summary>An empty history over a vocabulary of <paramref name="vocabSize"/> ids, with room for <paramref name="capacity"/> tokens.</summary>
    public TokenHistory(int vocabSize, int capacity = 16)
    {
        _seen = new bool[vocabSize];
        _tokens = new int[Math.Max(capacity, 1)];
    }

    /// <summary>Tokens held.</summary>
    public int Count => _count;

    /// <summary>The token at <paramref name="index"/>.</summary>
    public int this[int index] => (uint)index < (uint)_count ? _tokens[index] : throw new ArgumentOutOfRangeException(nameof(index), index, $"the sequence holds {_count} tokens");

    /// <summary>The tokens, valid until the next change.</summary>
    public ReadOnlySpan<int> Span => _tokens.AsSpan(0, _count);

    /// <summary>Tokens <paramref name="start"/> to <paramref name="start"/> + <paramref name="length"/>, valid until the next change.</summary>
    public ReadOnlyMemory<int> Memory(int start, int length) => _tokens.AsMemory(0, _count).Slice(start, length);

    /// <summary>The distinct ids held, in the order first seen.</summary>
    public ReadOnlySpan<int> Distinct => CollectionsMarshal.AsSpan(_distinct);

    /// <summary>Throws unless every id is in [0, <paramref name="vocabSize"/>); the exception names <paramref name="paramName"/> and the index.</summary>
    public static void Validate(ReadOnlySpan<int> ids, int vocabSize, string paramName)
    {
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)vocabSize)
                throw new ArgumentOutOfRangeException(paramName, ids[i], $"token id at index {i} is {ids[i]}; this model's ids run from 0 to {vocabSize - 1}");
    }

    /// <summary>Appends an id (already validated).</summary>
    public void Add(int id)
    {
        if (_count == _tokens.Length) Array.Resize(ref _tokens, _tokens.Length * 2);
        _tokens[_count++] = id;
        See(id);
    }

    /// <summary>Appends ids (already validated).</summary>
    public void AddRange(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids) Add(id);
    }

    /// <summary>Keeps the first <paramref name="count"/> tokens and rebuilds the distinct set from them.</summary>
    public void TruncateTo(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)count, (uint)_count, nameof(count));
        _count = count;
        ForgetSeen();
        foreach (int id in Span) See(id);
    }

    /// <summary>Forgets every token.</summary>
    public void Clear()
    {
        _count = 0;
        ForgetSeen();
    }

    /// <summary>Draws the next token from <paramref name="logits"/>, the repetition penalty applied to the ids held.</summary>
    public int Sample(Sampler sampler, ReadOnlySpan<float> logits) => sampler.Sample(logits, Distinct);

    /// <summary>
    /// As <see cref="Sample(Sampler, ReadOnlySpan{float})"/>, kept to what <paramref name="constraint"/> allows (null:
    /// anything): the draw from the model's logits is tried first, and only when the constraint rejects it are the
    /// rejected tokens masked to -infinity and the same sampler draws again, so every sampling setting still applies.
    /// </summary>
    public int Sample(Sampler sampler, TokenConstraint? constraint, ReadOnlySpan<float> logits)
    {
        int token = sampler.Sample(logits, Distinct);
        if (constraint is null) return token;
        if (constraint.TryAdvance(token)) { constraint.Accepted++; return token; }
        constraint.Masked++;
        var masked = constraint.MaskBuffer;
        constraint.Mask(logits, masked);
        token = sampler.Sample(masked, Distinct);
        if (!constraint.TryAdvance(token)) throw new InvalidOperationException($"constrained decoding drew token {token}, which its own mask rejected");
        return token;
    }

    private void See(int id)
    {
        if (!_seen[id]) { _seen[id] = true; _distinct.Add(id); }
    }

    private void ForgetSeen()
    {
        foreach (int id in _distinct) _seen[id] = false;
        _distinct.Clear();
    }

    /// <inheritdoc/>
    public IEnumerator<int> GetEnumerator()
    {
        for (int i = 0; i < _count; i++) yield return _tokens[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
