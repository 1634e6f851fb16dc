using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// One layer's view of a sequence in a <see cref="KvBlockPool"/>: the common cache interface over pages. Nothing is
/// evicted (positions equal indices); capacity is a per-sequence limit and the pool's free blocks.
/// </summary>
public sealed class PagedKvCache : IKvCache
{
    private readonly PagedSequence _sequence;
    private readonly int _layer;

    internal PagedKvCache(PagedSequence sequence, int layer)
    {
        _sequence = sequence; _layer = layer;
    }

    internal PagedSequence Sequence => _sequence;

    /// <inheritdoc/>
    public int Position => Count;
    /// <inheritdoc/>
    public int Count { get; internal set; }
    /// <inheritdoc/>
    public int Capacity => _sequence.Capacity;
    /// <inheritdoc/>
    public int KvHeads => _sequence.Pool.KvHeads;
    /// <inheritdoc/>
    public int HeadDim => _sequence.Pool.HeadDim;
    /// <inheritdoc/>
    public AttentionMask Visibility => AttentionMask.Causal;

    /// <inheritdoc/>
    public KvBlock Held
    {
        get
        {
            _sequence.ThrowIfReleased();
            var pool = _sequence.Pool;
            return new KvBlock(_sequence.Pages, pool.KeyOffset(_layer), pool.ValueOffset(_layer), pool.BlockShift, pool.RowFloats, Iota.Get(Count));
        }
    }

    /// <inheritdoc/>
    public void EnsureRoomFor(int tokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        _sequence.ThrowIfReleased();
        if ((long)Count + tokens > Capacity)
            throw new CacheFullException($"the sequence holds {Count} of at most {Capacity} tokens; {tokens} more do not fit");
        int blocks = _sequence.BlocksNeeded(Count, tokens);
        if (blocks > _sequence.Reserved + _sequence.Pool.BlocksAvailable) throw _sequence.Pool.Exhausted(blocks);
    }

    /// <inheritdoc/>
    public bool HasRoomFor(int tokens) =>
        tokens >= 0 && !_sequence.IsReleased && (long)Count + tokens <= Capacity
        && _sequence.BlocksNeeded(Count, tokens) <= _sequence.Reserved + _sequence.Pool.BlocksAvailable;

    /// <inheritdoc/>
    public unsafe void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int tokens)
    {
        var pool = _sequence.Pool;
        int row = pool.RowFloats;
        if (keys.Length < (long)tokens * row || values.Length < (long)tokens * row)
            throw new ArgumentException($"{tokens} tokens need {tokens * row} key and value floats");
        EnsureRoomFor(tokens);
        nint keyOffset = pool.KeyOffset(_layer), valueOffset = pool.ValueOffset(_layer);
        for (int t = 0; t < tokens; t++)
        {
            int index = Count + t;
            float* page = (float*)_sequence.WritablePage(index >> pool.BlockShift);
            nint slot = (nint)(index & (pool.BlockSize - 1)) * row;
            keys.Slice(t * row, row).CopyTo(new Span<float>(page + keyOffset + slot, row));
            values.Slice(t * row, row).CopyTo(new Span<float>(page + valueOffset + slot, row));
        }
        Count += tokens;
    }

    /// <inheritdoc/>
    public void Reset()
    {
        _sequence.ThrowIfReleased();
        Count = 0;
        _sequence.TrimBlocks();
    }

    /// <inheritdoc/>
    public void Rewind(int tokens)
    {
        if (tokens < 0 || tokens > Count)
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"can rewind between 0 and the {Count} tokens held");
        _sequence.ThrowIfReleased();
        Count -= tokens;
        _sequence.TrimBlocks();
    }
}
