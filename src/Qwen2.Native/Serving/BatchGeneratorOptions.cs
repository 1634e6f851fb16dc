namespace Qwen2.Native.Serving;

/// <summary>How a <see cref="BatchGenerator"/> schedules its requests.</summary>
public sealed record BatchGeneratorOptions
{
    /// <summary>Most sequences in one step: each decodes a token (or takes a prompt chunk) per step.</summary>
    public int MaxBatchSize { get; init; } = 16;

    /// <summary>
    /// Most prompt tokens run in one step, over all requests still in their prompt. A long prompt is cut into chunks
    /// so the sequences already decoding keep getting a token every step (chunked prefill).
    /// </summary>
    public int MaxPrefillTokensPerStep { get; init; } = 512;

    /// <summary>The KV memory shared by all sequences.</summary>
    public BatchingKvCacheOptions Cache { get; init; } = new();

    /// <summary>
    /// Start a request whose prompt begins like a running sequence's tokens by forking that sequence: the common
    /// prefix is neither stored twice nor computed again.
    /// </summary>
    public bool SharePrefixes { get; init; } = true;

    /// <summary>
    /// Automatic prefix caching: a request's full KV blocks stay in the pool after it ends (keyed by their tokens and
    /// everything before them, evicted least recently used when the pool needs room), and a later request that begins
    /// with the same tokens starts from them instead of computing them again
    /// (<see cref="BatchingKvCache.Join(ReadOnlySpan{int}, out int)"/>). Its tokens are the same either way.
    /// </summary>
    public bool CachePrefixes { get; init; }

    /// <summary>Checks every field.</summary>
    public void Validate()
    {
        if (MaxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "MaxBatchSize must be at least 1");
        if (MaxPrefillTokensPerStep < 1) throw new ArgumentOutOfRangeException(nameof(MaxPrefillTokensPerStep), MaxPrefillTokensPerStep, "MaxPrefillTokensPerStep must be at least 1");
        ArgumentNullException.ThrowIfNull(Cache, nameof(Cache));
    }
}
