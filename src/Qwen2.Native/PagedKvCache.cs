using System.Runtime.InteropServices;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// A shared pool of fixed-size KV blocks, as PagedAttention allocates them: a block holds the keys and values of
/// <see cref="BlockSize"/> consecutive tokens for every layer of the model. Sequences take blocks as they grow and give
/// them back when they shrink or leave, so memory follows the tokens held rather than a capacity reserved per sequence.
/// A block can belong to several sequences at once (a shared prompt); it is copied before one of them writes to it.
/// Memory is taken from the runtime block by block, up to <see cref="MaxBlocks"/>, and kept for reuse until
/// <see cref="Trim"/>. Thread-safe.
/// </summary>
public sealed class KvBlockPool
{
    private readonly object _lock = new();
    // By block id, grown as blocks are first needed, so a large MaxBlocks costs nothing up front.
    private readonly List<float[]?> _memory = [];  // null after Trim
    private readonly List<nint> _address = [];     // of each block's pinned memory
    private readonly List<int> _refs = [];         // sequences holding each block
    private readonly Stack<int> _recycled = new(); // ids with memory and no holder
    private readonly Stack<int> _bare = new();     // ids whose memory Trim gave back
    private int _reserved;

    /// <summary>Creates an empty pool of at most <paramref name="maxBlocks"/> blocks of <paramref name="blockSize"/> tokens.</summary>
    /// <param name="layers">Layers of the model.</param>
    /// <param name="kvHeads">Key/value heads per token.</param>
    /// <param name="headDim">Dimension of a head.</param>
    /// <param name="blockSize">Tokens per block: a power of two (16 is PagedAttention's usual choice).</param>
    /// <param name="maxBlocks">Most blocks the pool hands out at once.</param>
    public KvBlockPool(int layers, int kvHeads, int headDim, int blockSize, int maxBlocks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kvHeads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(headDim, 1);
        if (blockSize < 1 || blockSize > 1 << 16 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "block size must be a power of two between 1 and 65536 tokens");
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBlocks, 1);
        long floats = 2L * layers * blockSize * kvHeads * headDim;
        if (floats > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, $"a block of {blockSize} tokens x {layers} layers exceeds one array; use smaller blocks");
        Layers = layers; KvHeads = kvHeads; HeadDim = headDim; BlockSize = blockSize; MaxBlocks = maxBlocks;
        BlockShift = System.Numerics.BitOperations.Log2((uint)blockSize);
        BlockFloats = (int)floats;
    }

    /// <summary>Layers of the model.</summary>
    public int Layers { get; }
    /// <summary>Key/value heads per token.</summary>
    public int KvHeads { get; }
    /// <summary>Dimension of a head.</summary>
    public int HeadDim { get; }
    /// <summary>Tokens per block.</summary>
    public int BlockSize { get; }
    /// <summary>Most blocks the pool hands out at once.</summary>
    public int MaxBlocks { get; }
    /// <summary>Bytes of one block: keys and values of <see cref="BlockSize"/> tokens in every layer.</summary>
    public long BlockBytes => (long)BlockFloats * sizeof(float);
    /// <summary>Bytes of keys and values of one token in every layer.</summary>
    public long TokenBytes => BlockBytes / BlockSize;

    internal int BlockShift { get; }
    internal int BlockFloats { get; }
    internal int RowFloats => KvHeads * HeadDim;
    internal nint KeyOffset(int layer) => (nint)layer * 2 * BlockSize * RowFloats;
    internal nint ValueOffset(int layer) => KeyOffset(layer) + (nint)BlockSize * RowFloats;

    /// <summary>Blocks held by at least one sequence.</summary>
    public int BlocksInUse { get; private set; }

    /// <summary>Blocks held by more than one sequence (shared prompts).</summary>
    public int BlocksShared { get { lock (_lock) return _refs.Count(r => r > 1); } }

    /// <summary>Blocks whose memory the pool holds: in use, or free and kept for reuse.</summary>
    public int BlocksAllocated { get; private set; }

    /// <summary>Blocks that can still be handed out (neither in use nor promised to a running step).</summary>
    public int BlocksAvailable { get { lock (_lock) return MaxBlocks - BlocksInUse - _reserved; } }

    /// <summary>Bytes of the blocks in use.</summary>
    public long BytesInUse => BlocksInUse * BlockBytes;

    /// <summary>Bytes of memory the pool holds (<see cref="BlocksAllocated"/> blocks).</summary>
    public long BytesAllocated => BlocksAllocated * BlockBytes;

    /// <summary>Gives the memory of free blocks back to the runtime; blocks in use are untouched.</summary>
    public void Trim()
    {
        lock (_lock)
            while (_recycled.TryPop(out int id))
            {
                _memory[id] = null; _address[id] = 0;
                BlocksAllocated--;
                _bare.Push(id);
            }
    }

    /// <summary>Promises <paramref name="blocks"/> blocks to a step, or throws before anything changes.</summary>
    internal void Reserve(int blocks)
    {
        if (blocks == 0) return;
        lock (_lock)
        {
            if ((long)BlocksInUse + _reserved + blocks > MaxBlocks) throw Exhausted(blocks);
            _reserved += blocks;
        }
    }

    internal void Unreserve(int blocks)
    {
        if (blocks == 0) return;
        lock (_lock) _reserved -= blocks;
    }

    internal CacheFullException Exhausted(int blocks) => new(
        $"the KV block pool has {MaxBlocks - BlocksInUse - _reserved} of {MaxBlocks} blocks ({BlockSize} tokens each) free; {blocks} more are needed. " +
        "Let a sequence finish or leave, or give the pool more memory.");

    /// <summary>Hands out a block held once; <paramref name="reserved"/>: it was promised by <see cref="Reserve"/>.</summary>
    internal int Rent(bool reserved)
    {
        lock (_lock)
        {
            if (reserved) _reserved--;
            else if (BlocksInUse + _reserved >= MaxBlocks) throw Exhausted(1);
            if (!_recycled.TryPop(out int id))
            {
                // Every id there is is in use (and under MaxBlocks): reuse one Trim emptied, or make a new one.
                if (!_bare.TryPop(out id))
                {
                    id = _memory.Count;
                    _memory.Add(null); _address.Add(0); _refs.Add(0);
                }
                // Pinned, so attention can address a block while other threads allocate.
                var memory = GC.AllocateUninitializedArray<float>(BlockFloats, pinned: true);
                _memory[id] = memory;
                _address[id] = Marshal.UnsafeAddrOfPinnedArrayElement(memory, 0);
                BlocksAllocated++;
            }
            _refs[id] = 1;
            BlocksInUse++;
            return id;
        }
    }

    internal void AddRef(int id)
    {
        lock (_lock) _refs[id]++;
    }

    internal void Release(int id)
    {
        lock (_lock)
        {
            if (--_refs[id] > 0) return;
            BlocksInUse--;
            _recycled.Push(id);
        }
    }

    internal bool IsShared(int id)
    {
        lock (_lock) return _refs[id] > 1;
    }

    internal nint Address(int id)
    {
        lock (_lock) return _address[id];
    }

    internal Span<float> Memory(int id)
    {
        lock (_lock) return _memory[id];
    }
}

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

/// <summary>A sequence's block table in a pool, shared by its layers' <see cref="PagedKvCache"/> views.</summary>
internal sealed class PagedSequence
{
    private int[] _ids = new int[4];
    private nint[] _pages = new nint[4];
    private int _blocks;
    private bool _released;

    public PagedSequence(KvBlockPool pool, int capacity)
    {
        Pool = pool; Capacity = capacity;
        Layers = new PagedKvCache[pool.Layers];
        for (int i = 0; i < Layers.Length; i++) Layers[i] = new PagedKvCache(this, i);
        Cache = new PastKeyValues(Layers);
    }

    public KvBlockPool Pool { get; }
    public int Capacity { get; }
    public PagedKvCache[] Layers { get; }
    public PastKeyValues Cache { get; }
    /// <summary>Blocks promised to this sequence for the running step.</summary>
    public int Reserved { get; private set; }
    public ReadOnlySpan<nint> Pages => _pages.AsSpan(0, _blocks);

    public void ThrowIfReleased()
    {
        if (_released) throw new ObjectDisposedException(nameof(PagedKvCache), "this sequence has left its batching cache; its blocks were returned to the pool");
    }

    /// <summary>Blocks a write of <paramref name="tokens"/> after <paramref name="count"/> takes from the pool: new ones, and copies of shared ones.</summary>
    public int BlocksNeeded(int count, int tokens)
    {
        if (tokens == 0) return 0;
        int first = count >> Pool.BlockShift, last = (count + tokens - 1) >> Pool.BlockShift, needed = Math.Max(0, last + 1 - _blocks);
        for (int b = first; b < Math.Min(_blocks, last + 1); b++)
            if (Pool.IsShared(_ids[b])) needed++;
        return needed;
    }

    /// <summary>Records blocks the pool has reserved for this sequence's next write.</summary>
    public void Promise(int blocks) => Reserved += blocks;

    public void ReleaseReservation()
    {
        Pool.Unreserve(Reserved);
        Reserved = 0;
    }

    /// <summary>The address of block <paramref name="index"/> of the table, taken from the pool or copied first if shared.</summary>
    public nint WritablePage(int index)
    {
        if (index == _blocks)
        {
            int id = Rent();
            if (_blocks == _ids.Length)
            {
                Array.Resize(ref _ids, _blocks * 2);
                Array.Resize(ref _pages, _blocks * 2);
            }
            _ids[_blocks] = id; _pages[_blocks] = Pool.Address(id);
            _blocks++;
        }
        else if (Pool.IsShared(_ids[index]))
        {
            // Copy-on-write: every layer's rows move to a private block; the other holders keep the original.
            int id = Rent(), old = _ids[index];
            Pool.Memory(old).CopyTo(Pool.Memory(id));
            Pool.Release(old);
            _ids[index] = id; _pages[index] = Pool.Address(id);
        }
        return _pages[index];
    }

    private int Rent()
    {
        bool reserved = Reserved > 0;
        int id = Pool.Rent(reserved);
        if (reserved) Reserved--;
        return id;
    }

    /// <summary>Returns the blocks past what the longest layer still holds.</summary>
    public void TrimBlocks()
    {
        int held = 0;
        foreach (var l in Layers) held = Math.Max(held, l.Count);
        int keep = (held + Pool.BlockSize - 1) >> Pool.BlockShift;
        while (_blocks > keep) Pool.Release(_ids[--_blocks]);
    }

    /// <summary>A new sequence holding the first <paramref name="tokens"/> tokens of this one, sharing their blocks.</summary>
    public PagedSequence Fork(int tokens)
    {
        ThrowIfReleased();
        var fork = new PagedSequence(Pool, Capacity);
        int blocks = (tokens + Pool.BlockSize - 1) >> Pool.BlockShift;
        fork._ids = new int[Math.Max(4, blocks)];
        fork._pages = new nint[fork._ids.Length];
        for (int b = 0; b < blocks; b++)
        {
            Pool.AddRef(_ids[b]);
            fork._ids[b] = _ids[b]; fork._pages[b] = _pages[b];
        }
        fork._blocks = blocks;
        foreach (var l in fork.Layers) l.Count = tokens;
        return fork;
    }

    public void Release()
    {
        if (_released) return;
        _released = true;
        ReleaseReservation();
        while (_blocks > 0) Pool.Release(_ids[--_blocks]);
        foreach (var l in Layers) l.Count = 0;
    }
}

/// <summary>0, 1, 2, …: the positions of a cache that never evicts, shared by every paged sequence.</summary>
internal static class Iota
{
    private static int[] s_values = Enumerable.Range(0, 4096).ToArray();
    private static readonly object s_lock = new();

    public static ReadOnlySpan<int> Get(int count)
    {
        var values = Volatile.Read(ref s_values);
        if (values.Length < count)
            lock (s_lock)
            {
                values = s_values;
                if (values.Length < count)
                    Volatile.Write(ref s_values, values = Enumerable.Range(0, Math.Max(count, 2 * values.Length)).ToArray());
            }
        return values.AsSpan(0, count);
    }
}

/// <summary>How a <see cref="BatchingKvCache"/> is sized.</summary>
public sealed record BatchingKvCacheOptions
{
    /// <summary>Tokens per block: a power of two. Smaller blocks waste less at each sequence's end; 16 is PagedAttention's usual choice.</summary>
    public int BlockSize { get; init; } = 16;

    /// <summary>Most bytes of keys and values the pool holds (all sequences together); memory is taken only as tokens arrive.</summary>
    public long MaxBytes { get; init; } = 2L << 30;

    /// <summary>Most tokens one sequence holds; null means the model's max_position_embeddings.</summary>
    public int? MaxTokensPerSequence { get; init; }
}

/// <summary>
/// The caches of many sequences at once, in one shared <see cref="KvBlockPool"/>: sequences of any length join and
/// leave between steps (continuous batching), and each is an ordinary <see cref="PastKeyValues"/>, so it runs alone
/// through <see cref="Qwen2Model.Forward(ReadOnlySpan{int}, PastKeyValues?, bool, LogitsSelection)"/> or with the
/// others through <see cref="Qwen2Model.ForwardBatch"/>, which reads the weights once for the whole batch.
/// A sequence forked from another shares the blocks of their common prompt until one of them writes (copy-on-write).
/// Joining, forking and leaving are thread-safe; one sequence is used by one caller at a time.
/// </summary>
public sealed class BatchingKvCache
{
    private readonly object _lock = new();
    private readonly List<PagedSequence> _sequences = [];

    /// <summary>Creates an empty cache for <paramref name="model"/>'s layers and heads.</summary>
    public BatchingKvCache(Qwen2Model model, BatchingKvCacheOptions? options = null)
        : this((model ?? throw new ArgumentNullException(nameof(model))).Config.NumHiddenLayers, model.Config.NumKeyValueHeads, model.Config.HeadDim,
            options?.MaxTokensPerSequence ?? model.Config.MaxPositionEmbeddings, options)
    {
    }

    /// <summary>Creates an empty cache for a model of <paramref name="layers"/> layers of <paramref name="kvHeads"/> × <paramref name="headDim"/> keys and values.</summary>
    public BatchingKvCache(int layers, int kvHeads, int headDim, int maxTokensPerSequence, BatchingKvCacheOptions? options = null)
    {
        options ??= new BatchingKvCacheOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokensPerSequence, 1);
        if (options.MaxTokensPerSequence is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxTokensPerSequence, "MaxTokensPerSequence must be at least 1");
        long blockBytes = 2L * layers * options.BlockSize * kvHeads * headDim * sizeof(float);
        if (options.MaxBytes < blockBytes)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxBytes, $"MaxBytes must hold at least one block of {options.BlockSize} tokens ({blockBytes} bytes)");
        Pool = new KvBlockPool(layers, kvHeads, headDim, options.BlockSize, (int)Math.Min(options.MaxBytes / blockBytes, Array.MaxLength / 2));
        MaxTokensPerSequence = maxTokensPerSequence;
    }

    /// <summary>The shared block pool, with its use.</summary>
    public KvBlockPool Pool { get; }

    /// <summary>Most tokens one sequence holds.</summary>
    public int MaxTokensPerSequence { get; }

    /// <summary>The sequences in the cache, in the order they joined.</summary>
    public IReadOnlyList<PastKeyValues> Sequences
    {
        get { lock (_lock) return _sequences.Select(s => s.Cache).ToArray(); }
    }

    /// <summary>Tokens held, summed over sequences (a shared prompt counts once per sequence).</summary>
    public long TokensHeld
    {
        get { lock (_lock) return _sequences.Sum(s => (long)s.Cache.Count); }
    }

    /// <summary>Starts an empty sequence; it takes blocks as tokens arrive.</summary>
    public PastKeyValues Join()
    {
        var s = new PagedSequence(Pool, MaxTokensPerSequence);
        lock (_lock) _sequences.Add(s);
        return s.Cache;
    }

    /// <summary>
    /// Starts a sequence holding the first <paramref name="tokens"/> tokens of <paramref name="source"/> (all of them when
    /// null), sharing their blocks: nothing is copied until one of the two writes into a shared block.
    /// </summary>
    public PastKeyValues Fork(PastKeyValues source, int? tokens = null)
    {
        var from = Own(source, nameof(source));
        int held = source.Count, take = tokens ?? held;
        foreach (var l in from.Layers)
            if (l.Count != held) throw new ArgumentException("the source sequence is in the middle of a step (its layers hold different counts)", nameof(source));
        if (take < 0 || take > held) throw new ArgumentOutOfRangeException(nameof(tokens), take, $"can share between 0 and the {held} tokens the source holds");
        var fork = from.Fork(take);
        lock (_lock) _sequences.Add(fork);
        return fork.Cache;
    }

    /// <summary>Removes a sequence and returns its blocks to the pool (shared ones stay with their other holders).</summary>
    public void Leave(PastKeyValues sequence)
    {
        var s = Own(sequence, nameof(sequence));
        lock (_lock) _sequences.Remove(s);
        s.Release();
    }

    private PagedSequence Own(PastKeyValues sequence, string name)
    {
        ArgumentNullException.ThrowIfNull(sequence, name);
        var s = sequence.Paged;
        lock (_lock)
            if (s is null || !_sequences.Contains(s))
                throw new ArgumentException("this sequence does not belong to this batching cache (or has left it)", name);
        return s;
    }
}
