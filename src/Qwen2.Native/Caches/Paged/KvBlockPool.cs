using System.Runtime.InteropServices;

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
    private readonly PrefixBlockIndex _prefixes = new(); // full blocks kept for reuse across sequences
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

    /// <summary>
    /// Blocks no sequence holds that are kept, with their keys and values, for a later sequence with the same prefix
    /// (<see cref="BatchingKvCache.Publish"/>); they count as available, and the least recently used is reused first
    /// when the pool needs room.
    /// </summary>
    public int BlocksCached { get { lock (_lock) return _prefixes.IdleCount; } }

    /// <summary>Bytes of the blocks in use.</summary>
    public long BytesInUse => BlocksInUse * BlockBytes;

    /// <summary>Bytes of memory the pool holds (<see cref="BlocksAllocated"/> blocks).</summary>
    public long BytesAllocated => BlocksAllocated * BlockBytes;

    /// <summary>Gives the memory of free blocks back to the runtime; blocks in use and cached prefix blocks are kept.</summary>
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
            // A free block first; then new memory up to MaxBlocks; then the least recently used cached prefix block.
            if (!_recycled.TryPop(out int id) && (BlocksAllocated < MaxBlocks || (id = _prefixes.Evict()) < 0))
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
            if (_prefixes.Contains(id)) _prefixes.Idle(id);
            else _recycled.Push(id);
        }
    }

    /// <summary>Keys a full block a sequence holds for reuse; returns the block keyed for it, or -1 (<see cref="PrefixBlockIndex.Add"/>).</summary>
    internal int PublishPrefix(int id, ulong key, int parent, ReadOnlySpan<int> tokens)
    {
        lock (_lock) return _prefixes.Add(id, key, parent, tokens);
    }

    /// <summary>
    /// Takes a hold on the cached block of <paramref name="tokens"/> after <paramref name="parent"/>, or returns -1
    /// (none, or reviving an idle one would go past <see cref="MaxBlocks"/>).
    /// </summary>
    internal int TakePrefix(ulong key, int parent, ReadOnlySpan<int> tokens)
    {
        lock (_lock)
        {
            int id = _prefixes.Find(key, parent, tokens);
            if (id < 0) return -1;
            if (_refs[id] == 0)
            {
                if (BlocksInUse + _reserved >= MaxBlocks) return -1;
                _prefixes.Revive(id);
                BlocksInUse++;
            }
            _refs[id]++;
            return id;
        }
    }

    /// <summary>Whether a write must copy the block first: another sequence holds it, or it is a cached prefix block.</summary>
    internal bool IsShared(int id)
    {
        lock (_lock) return _refs[id] > 1 || _prefixes.Contains(id);
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
