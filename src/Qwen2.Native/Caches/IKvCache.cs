using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// One layer's key/value cache, as a Hugging Face cache layer: it counts the tokens it has seen (which drives RoPE)
/// and holds their rotated keys and values for attention. Batching, paged or quantized caches implement this too.
/// </summary>
public interface IKvCache
{
    /// <summary>Absolute position of the next token: how many tokens this cache has seen.</summary>
    int Position { get; }
    /// <summary>Tokens held now (at most <see cref="Capacity"/>).</summary>
    int Count { get; }
    /// <summary>Tokens it can hold.</summary>
    int Capacity { get; }
    /// <summary>Key/value heads per token.</summary>
    int KvHeads { get; }
    /// <summary>Dimension of a head.</summary>
    int HeadDim { get; }
    /// <summary>Which held keys a query at a given position may see, beyond causality (for caches that evict).</summary>
    AttentionMask Visibility { get; }
    /// <summary>The held keys, values and positions, for attention.</summary>
    KvBlock Held { get; }
    /// <summary>Throws <see cref="CacheFullException"/> when <paramref name="tokens"/> more would not fit; changes nothing.</summary>
    void EnsureRoomFor(int tokens);
    /// <summary>Whether <paramref name="tokens"/> more would fit: <see cref="EnsureRoomFor"/> would not throw.</summary>
    bool HasRoomFor(int tokens)
    {
        try
        {
            EnsureRoomFor(tokens);
            return true;
        }
        catch (CacheFullException)
        {
            return false;
        }
    }
    /// <summary>Appends rotated keys and values ([tokens, KvHeads, HeadDim] each) at positions Position, Position+1, ...</summary>
    void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int tokens);
    /// <summary>Forgets everything; Position and Count return to 0. Memory is kept.</summary>
    void Reset();
    /// <summary>Forgets the <paramref name="tokens"/> most recent tokens; Position moves back by as many.</summary>
    void Rewind(int tokens);
}
