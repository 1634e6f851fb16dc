using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>What a layer's cache does when a token arrives and it is full.</summary>
public enum CacheOverflow
{
    /// <summary>Throw <see cref="CacheFullException"/> and leave the cache unchanged (the default).</summary>
    Throw,
    /// <summary>Overwrite the oldest entry (after the sink tokens); positions keep counting, so RoPE stays absolute.</summary>
    SlidingWindow,
}

/// <summary>How a cache is created.</summary>
/// <param name="Overflow">What happens past capacity.</param>
/// <param name="SinkTokens">With <see cref="CacheOverflow.SlidingWindow"/>: the first N tokens, never evicted (attention sinks).</param>
public sealed record CacheOptions(CacheOverflow Overflow = CacheOverflow.Throw, int SinkTokens = 0);

/// <summary>A cache has no room for the tokens of a call; nothing was changed.</summary>
public sealed class CacheFullException(string message) : InvalidOperationException(message);

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
    /// <summary>Appends rotated keys and values ([tokens, KvHeads, HeadDim] each) at positions Position, Position+1, ...</summary>
    void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int tokens);
    /// <summary>Forgets everything; Position and Count return to 0. Memory is kept.</summary>
    void Reset();
    /// <summary>Forgets the <paramref name="tokens"/> most recent tokens; Position moves back by as many.</summary>
    void Rewind(int tokens);
}

/// <summary>
/// A preallocated ring buffer of float32 keys and values for one layer. Appending allocates nothing. Full, it either
/// throws (the default) or, created with <see cref="CacheOverflow.SlidingWindow"/>, overwrites its oldest entry after
/// the sink tokens.
/// </summary>
public sealed class RingKvCache : IKvCache
{
    private readonly float[] _keys, _values;
    private readonly int[] _positions;
    private readonly int _row;
    private int _used;   // slots written since the last reset (high-water mark)
    private int _head;   // next slot to overwrite once every slot is used
    private const int Empty = int.MaxValue; // a rewound slot: invisible to every query

    /// <summary>Creates a cache for <paramref name="capacity"/> tokens of <paramref name="kvHeads"/> x <paramref name="headDim"/> keys and values.</summary>
    public RingKvCache(int capacity, int kvHeads, int headDim, CacheOptions? options = null)
    {
        options ??= new CacheOptions();
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "cache capacity must be at least 1 token");
        if (kvHeads <= 0) throw new ArgumentOutOfRangeException(nameof(kvHeads), kvHeads, "must be positive");
        if (headDim <= 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "must be positive");
        if (options.SinkTokens < 0 || (options.SinkTokens > 0 && options.Overflow != CacheOverflow.SlidingWindow) || options.SinkTokens >= capacity)
            throw new ArgumentOutOfRangeException(nameof(options), options.SinkTokens, $"sink tokens need a sliding-window cache and must be fewer than its capacity ({capacity})");
        long floats = (long)capacity * kvHeads * headDim;
        if (floats > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"{capacity} tokens x {kvHeads} heads x {headDim} exceed one array; use a smaller capacity");
        Capacity = capacity; KvHeads = kvHeads; HeadDim = headDim; Options = options;
        _row = kvHeads * headDim;
        _keys = new float[floats];
        _values = new float[floats];
        _positions = new int[capacity];
        _head = options.SinkTokens;
    }

    /// <summary>How the cache was created.</summary>
    public CacheOptions Options { get; }
    /// <inheritdoc/>
    public int Position { get; private set; }
    /// <inheritdoc/>
    public int Count { get; private set; }
    /// <inheritdoc/>
    public int Capacity { get; }
    /// <inheritdoc/>
    public int KvHeads { get; }
    /// <inheritdoc/>
    public int HeadDim { get; }

    /// <summary>Bytes of keys and values reserved.</summary>
    public long ReservedBytes => 2L * _keys.Length * sizeof(float);

    /// <inheritdoc/>
    public AttentionMask Visibility => Options.Overflow == CacheOverflow.SlidingWindow
        ? new AttentionMask(int.MaxValue, Options.SinkTokens, Capacity - Options.SinkTokens)
        : AttentionMask.Causal;

    /// <inheritdoc/>
    public KvBlock Held => new(_keys.AsSpan(0, _used * _row), _values.AsSpan(0, _used * _row), _positions.AsSpan(0, _used));

    /// <inheritdoc/>
    public void EnsureRoomFor(int tokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        if ((long)Position + tokens > int.MaxValue) throw new CacheFullException($"positions would pass {int.MaxValue}");
        if (Options.Overflow == CacheOverflow.Throw && (long)Count + tokens > Capacity)
            throw new CacheFullException($"the KV cache holds {Count} of {Capacity} tokens; {tokens} more do not fit. Create it with a larger capacity or as a sliding window.");
    }

    /// <inheritdoc/>
    public void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int tokens)
    {
        if (keys.Length < (long)tokens * _row || values.Length < (long)tokens * _row)
            throw new ArgumentException($"{tokens} tokens need {tokens * _row} key and value floats");
        EnsureRoomFor(tokens);
        // A block longer than the window only leaves its last tokens; earlier ones would be overwritten at once.
        int skip = Options.Overflow == CacheOverflow.SlidingWindow ? Math.Max(0, tokens - (Capacity - Options.SinkTokens)) : 0;
        for (int t = 0; t < tokens; t++)
        {
            int position = Position + t;
            if (t < skip && position >= Options.SinkTokens) continue;
            int slot;
            if (_used < Capacity)
            {
                slot = _used++;
                Count++;
            }
            else
            {
                slot = _head;
                _head = _head + 1 == Capacity ? Options.SinkTokens : _head + 1;
                if (_positions[slot] == Empty) Count++; // refills a rewound slot; otherwise evicts the oldest
            }
            keys.Slice(t * _row, _row).CopyTo(_keys.AsSpan(slot * _row, _row));
            values.Slice(t * _row, _row).CopyTo(_values.AsSpan(slot * _row, _row));
            _positions[slot] = position;
        }
        Position += tokens;
    }

    /// <inheritdoc/>
    public void Reset()
    {
        Position = 0; Count = 0; _used = 0; _head = Options.SinkTokens;
    }

    /// <inheritdoc/>
    public void Rewind(int tokens)
    {
        if (tokens < 0 || tokens > Count)
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"can rewind between 0 and the {Count} tokens held");
        bool wrapped = Position > _used;
        if (!wrapped)
        {
            _used -= tokens; Count -= tokens; Position -= tokens;
            _head = Options.SinkTokens;
            return;
        }
        if (tokens > Count - Options.SinkTokens)
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"the sliding window has evicted older tokens; at most {Count - Options.SinkTokens} can be rewound");
        for (int i = 0; i < tokens; i++)
        {
            _head = _head == Options.SinkTokens ? Capacity - 1 : _head - 1;
            _positions[_head] = Empty;
        }
        Count -= tokens; Position -= tokens;
    }
}
