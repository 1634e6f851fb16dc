namespace Qwen2.Native;

/// <summary>What a layer's cache does when a token arrives and it is full.</summary>
public enum CacheOverflow
{
    /// <summary>Throw <see cref="CacheFullException"/> and leave the cache unchanged (the default).</summary>
    Throw,
    /// <summary>Overwrite the oldest entry (after the sink tokens); positions keep counting, so RoPE stays absolute.</summary>
    SlidingWindow,
}
