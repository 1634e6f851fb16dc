namespace Qwen2.Native.Generation;

/// <summary>Options of an <see cref="InferenceSession"/>.</summary>
public sealed record SessionOptions
{
    /// <summary>Keep keys and values between steps (the default). False recomputes the whole sequence for every token, for comparisons.</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>Tokens the cache holds; null: the model's default capacity, capped by max_position_embeddings.</summary>
    public int? CacheCapacity { get; init; }
    /// <summary>What the cache does when full (default: stop with <see cref="StopReason.ContextFull"/>).</summary>
    public CacheOptions? CacheOptions { get; init; }
}
