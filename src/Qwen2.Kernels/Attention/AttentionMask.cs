using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// Which keys a query sees, by absolute positions: a key at k is visible to a query at p when
/// k ≤ p (causal), k &gt; p − <see cref="Window"/> (sliding-window layers), and, for a cache that overwrites its oldest
/// entries, k &lt; <see cref="SinkTokens"/> or k &gt; p − <see cref="RecentSpan"/>.
/// </summary>
/// <param name="Window">Sliding window of the layer in tokens; <see cref="int.MaxValue"/> for full attention.</param>
/// <param name="SinkTokens">Tokens at the start a ring cache never evicts.</param>
/// <param name="RecentSpan">Most recent tokens a ring cache keeps besides its sinks; <see cref="int.MaxValue"/> when it never evicts.</param>
public readonly record struct AttentionMask(int Window, int SinkTokens, int RecentSpan)
{
    /// <summary>Plain causal attention. (Note that <c>default(AttentionMask)</c> hides every key.)</summary>
    public static AttentionMask Causal { get; } = new(int.MaxValue, 0, int.MaxValue);

    /// <summary>Whether a query at absolute position <paramref name="query"/> sees the key at <paramref name="key"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsVisible(int query, int key) =>
        key <= query && (long)key > (long)query - Window && (key < SinkTokens || (long)key > (long)query - RecentSpan);
}
