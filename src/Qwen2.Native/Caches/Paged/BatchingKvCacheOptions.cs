namespace Qwen2.Native;

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
