namespace Qwen2.Native;

/// <summary>
/// Automatic prefix caching's index of full KV blocks (the design vLLM documents): a block is keyed by a hash of its
/// parent block's key and its own tokens, and kept after its last holder leaves, evicted least recently used when the
/// pool needs its memory. A lookup checks the parent block (and that it still holds what it held when the child was
/// keyed) and the tokens themselves, so a hash collision is a miss, never a wrong block. Used by
/// <see cref="KvBlockPool"/> under its lock.
/// </summary>
internal sealed class PrefixBlockIndex
{
    private readonly Dictionary<ulong, int> _byHash = [];
    private readonly Dictionary<int, Entry> _byBlock = [];
    private readonly LinkedList<int> _idle = new(); // cached blocks no sequence holds, least recently used first
    private readonly Dictionary<int, int> _generation = []; // times each block id was keyed: a reused parent is a new parent

    private sealed record Entry(ulong Hash, int Parent, int ParentGeneration, int[] Tokens)
    {
        public LinkedListNode<int>? Idle { get; set; }
    }

    /// <summary>Blocks kept for reuse that no sequence holds.</summary>
    public int IdleCount => _idle.Count;

    /// <summary>Blocks in the index, held or idle.</summary>
    public int Count => _byBlock.Count;

    /// <summary>The key of a block of <paramref name="tokens"/> after the block keyed <paramref name="parent"/> (0 for the first).</summary>
    public static ulong Key(ulong parent, ReadOnlySpan<int> tokens)
    {
        // A 64-bit multiply-xorshift mix; lookups compare the tokens, so this only has to spread the keys.
        ulong h = parent ^ 0x9E3779B97F4A7C15UL;
        foreach (int t in tokens)
        {
            h = (h ^ (uint)t) * 0xBF58476D1CE4E5B9UL;
            h ^= h >> 31;
        }
        return h == 0 ? 1 : h;
    }

    /// <summary>The block keyed <paramref name="key"/> whose parent is <paramref name="parent"/> and tokens are <paramref name="tokens"/>, or -1.</summary>
    public int Find(ulong key, int parent, ReadOnlySpan<int> tokens) =>
        _byHash.TryGetValue(key, out int id) && _byBlock[id] is var e && e.Parent == parent && e.ParentGeneration == Generation(parent)
            && tokens.SequenceEqual(e.Tokens) ? id : -1;

    private int Generation(int id) => id < 0 ? 0 : _generation.GetValueOrDefault(id);

    public bool Contains(int id) => _byBlock.ContainsKey(id);

    /// <summary>
    /// Keys block <paramref name="id"/> (held now) unless the same block is already keyed; returns the block the index
    /// now holds for these tokens after <paramref name="parent"/> (another one when they were computed twice), or -1
    /// when the key belongs to other tokens.
    /// </summary>
    public int Add(int id, ulong key, int parent, ReadOnlySpan<int> tokens)
    {
        int found = Find(key, parent, tokens);
        if (found >= 0 || _byHash.ContainsKey(key)) return found;
        if (_byBlock.ContainsKey(id)) return -1; // keyed under another prefix
        _byHash[key] = id;
        _byBlock[id] = new Entry(key, parent, Generation(parent), tokens.ToArray());
        _generation[id] = Generation(id) + 1;
        return id;
    }

    /// <summary>A cached block's last holder left: it waits, most recently used, for reuse or eviction.</summary>
    public void Idle(int id)
    {
        var e = _byBlock[id];
        e.Idle = _idle.AddLast(id);
    }

    /// <summary>An idle block is held again.</summary>
    public void Revive(int id)
    {
        var e = _byBlock[id];
        if (e.Idle is not null) { _idle.Remove(e.Idle); e.Idle = null; }
    }

    /// <summary>Drops the least recently used idle block from the index and returns its id for new contents, or -1.</summary>
    public int Evict()
    {
        if (_idle.First is not { } node) return -1;
        int id = node.Value;
        _idle.RemoveFirst();
        var e = _byBlock[id];
        _byBlock.Remove(id);
        _byHash.Remove(e.Hash);
        return id;
    }
}
