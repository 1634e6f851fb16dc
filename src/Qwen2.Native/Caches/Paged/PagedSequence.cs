namespace Qwen2.Native;

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

    /// <summary>The sequence whose layers <paramref name="layers"/> are, all of them in order; else null.</summary>
    public static PagedSequence? Viewed(IKvCache[] layers)
    {
        if (layers[0] is not PagedKvCache first || layers.Length != first.Sequence.Layers.Length) return null;
        for (int i = 0; i < layers.Length; i++)
            if (layers[i] != first.Sequence.Layers[i]) return null;
        return first.Sequence;
    }

    public KvBlockPool Pool { get; }
    public int Capacity { get; }
    public PagedKvCache[] Layers { get; }
    public PastKeyValues Cache { get; }
    /// <summary>Blocks promised to this sequence for the running step.</summary>
    public int Reserved { get; private set; }
    public ReadOnlySpan<nint> Pages => _pages.AsSpan(0, _blocks);

    public bool IsReleased => _released;

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

    /// <summary>Ids of the blocks in the table, in order.</summary>
    public ReadOnlySpan<int> BlockIds => _ids.AsSpan(0, _blocks);

    /// <summary>Tokens every layer holds (a layer runs ahead of the others during a step).</summary>
    public int CompleteTokens
    {
        get
        {
            int n = int.MaxValue;
            foreach (var l in Layers) n = Math.Min(n, l.Count);
            return n;
        }
    }

    /// <summary>A new sequence holding the first <paramref name="tokens"/> tokens of this one, sharing their blocks.</summary>
    public PagedSequence Fork(int tokens)
    {
        ThrowIfReleased();
        int blocks = (tokens + Pool.BlockSize - 1) >> Pool.BlockShift;
        foreach (int id in _ids.AsSpan(0, blocks)) Pool.AddRef(id);
        return Adopt(Pool, Capacity, _ids.AsSpan(0, blocks), tokens);
    }

    /// <summary>A new sequence over blocks already held for it (each with a reference taken), holding <paramref name="tokens"/> tokens.</summary>
    public static PagedSequence Adopt(KvBlockPool pool, int capacity, ReadOnlySpan<int> ids, int tokens)
    {
        var s = new PagedSequence(pool, capacity);
        s._ids = new int[Math.Max(4, ids.Length)];
        s._pages = new nint[s._ids.Length];
        for (int b = 0; b < ids.Length; b++)
        {
            s._ids[b] = ids[b]; s._pages[b] = pool.Address(ids[b]);
        }
        s._blocks = ids.Length;
        foreach (var l in s.Layers) l.Count = tokens;
        return s;
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
