namespace Qwen2.Native;

/// <summary>How a cache is created.</summary>
/// <param name="Overflow">What happens past capacity.</param>
/// <param name="SinkTokens">With <see cref="CacheOverflow.SlidingWindow"/>: the first N tokens, never evicted (attention sinks).</param>
public sealed record CacheOptions(CacheOverflow Overflow = CacheOverflow.Throw, int SinkTokens = 0);
