namespace Qwen2.Native;

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

    /// <summary>
    /// Automatic prefix caching: starts a sequence holding the longest run of cached full blocks that begins
    /// <paramref name="tokens"/> (blocks <see cref="Publish"/>ed by sequences before, whether they are still here or
    /// have left), and says how many tokens that is (a multiple of the block size; 0 when nothing matches). Their keys
    /// and values are the very ones computed before, so what follows runs exactly as it would have on a cold cache.
    /// </summary>
    /// <param name="tokens">The new sequence's tokens; pass all but the last to leave a token to run for logits.</param>
    /// <param name="cachedTokens">Tokens the new sequence holds.</param>
    public PastKeyValues Join(ReadOnlySpan<int> tokens, out int cachedTokens)
    {
        int size = Pool.BlockSize, parent = -1;
        ulong key = 0;
        var ids = new List<int>();
        for (int start = 0; start + size <= Math.Min(tokens.Length, MaxTokensPerSequence); start += size)
        {
            var block = tokens.Slice(start, size);
            key = PrefixBlockIndex.Key(key, block);
            int id = Pool.TakePrefix(key, parent, block);
            if (id < 0) break;
            ids.Add(id);
            parent = id;
        }
        cachedTokens = ids.Count * size;
        var s = PagedSequence.Adopt(Pool, MaxTokensPerSequence, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids), cachedTokens);
        lock (_lock) _sequences.Add(s);
        return s.Cache;
    }

    /// <summary>
    /// Offers <paramref name="sequence"/>'s full blocks to later sequences that begin with the same tokens
    /// (<see cref="Join(ReadOnlySpan{int}, out int)"/>): they stay in the pool after the sequence leaves, until the
    /// pool needs the room (least recently used first). Call it once the sequence will not be written again below
    /// its current length, e.g. just before it leaves.
    /// </summary>
    /// <param name="sequence">A sequence of this cache.</param>
    /// <param name="tokens">The tokens it holds, from the first (at least as many as are published).</param>
    public void Publish(PastKeyValues sequence, ReadOnlySpan<int> tokens)
    {
        var s = Own(sequence, nameof(sequence));
        int size = Pool.BlockSize, full = Math.Min(s.CompleteTokens, tokens.Length) / size, parent = -1;
        var ids = s.BlockIds;
        ulong key = 0;
        for (int b = 0; b < full; b++)
        {
            var block = tokens.Slice(b * size, size);
            key = PrefixBlockIndex.Key(key, block);
            // The chain goes on from the block the index holds, which is another one when these tokens ran twice.
            parent = Pool.PublishPrefix(ids[b], key, parent, block);
            if (parent < 0) return;
        }
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
