using Qwen2.Kernels;

namespace Qwen2.Native;

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
        if (!HasRoomFor(tokens))
            throw new CacheFullException($"the KV cache holds {Count} of {Capacity} tokens; {tokens} more do not fit. Create it with a larger capacity or as a sliding window.");
    }

    /// <inheritdoc/>
    /// <remarks>The overflow rule: a cache created with <see cref="CacheOverflow.Throw"/> takes tokens up to its
    /// capacity; a sliding window always has room, since it overwrites its oldest tokens after the sinks.</remarks>
    public bool HasRoomFor(int tokens) =>
        tokens >= 0 && (long)Position + tokens <= int.MaxValue && (Options.Overflow != CacheOverflow.Throw || (long)Count + tokens <= Capacity);

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
