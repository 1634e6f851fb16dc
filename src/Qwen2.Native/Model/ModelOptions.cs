namespace Qwen2.Native;

/// <summary>How a model runs.</summary>
public sealed record ModelOptions
{
    /// <summary>Threads for matrix products and attention, the caller's included; null means <see cref="Environment.ProcessorCount"/>. Logits are bit-identical for any count.</summary>
    public int? Threads { get; init; }

    /// <summary>Capacity in tokens of caches that <c>Forward(..., useCache: true)</c> creates itself (capped by max_position_embeddings, raised to the prompt's length).</summary>
    public int DefaultCacheCapacity { get; init; } = 4096;
}
