using Qwen2.Native.Serving;

namespace Qwen2.Server;

/// <summary>How a <see cref="Qwen2Server"/> (or endpoints mapped with <see cref="Qwen2ServerExtensions.MapQwen2Server"/>) serves a model.</summary>
public sealed record Qwen2ServerOptions
{
    /// <summary>The model id /v1/models lists and responses name; null: the model directory's name.</summary>
    public string? Alias { get; init; }

    /// <summary>
    /// The key every request but GET /health must send as <c>Authorization: Bearer KEY</c>; null or empty: no key
    /// is asked for.
    /// </summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// Continuous batching: batch size, prefill budget, KV memory and prefix caching (<see cref="BatchGeneratorOptions"/>).
    /// The default caches prefixes across requests (<see cref="BatchGeneratorOptions.CachePrefixes"/>), so a request that
    /// begins like an earlier one (a shared system prompt, a conversation's earlier turns) skips computing that part;
    /// usage reports it as <c>prompt_tokens_details.cached_tokens</c>.
    /// </summary>
    public BatchGeneratorOptions Batching { get; init; } = new() { CachePrefixes = true };

    /// <summary>
    /// Most requests waiting for a place in the running batch; one more is refused with 503 and Retry-After
    /// rather than queued without bound.
    /// </summary>
    public int MaxQueuedRequests { get; init; } = 64;

    /// <summary>Most bytes of a request body; a larger one is refused with 400.</summary>
    public int MaxRequestBodyBytes { get; init; } = 4 << 20;

    /// <summary>Longest a generation may run; it then ends as if the client had gone. Null: no limit.</summary>
    public TimeSpan? RequestTimeout { get; init; }

    /// <summary>The seconds a refused request is told to wait (the Retry-After header).</summary>
    public int RetryAfterSeconds { get; init; } = 1;

    /// <summary>Origin allowed to call the API from a browser (CORS); "*" allows any; null: no CORS headers.</summary>
    public string? CorsOrigin { get; init; }

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field is out of range; the parameter name says which.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Batching, nameof(Batching));
        Batching.Validate();
        if (MaxQueuedRequests < 0) throw new ArgumentOutOfRangeException(nameof(MaxQueuedRequests), MaxQueuedRequests, "MaxQueuedRequests must be >= 0");
        if (MaxRequestBodyBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxRequestBodyBytes), MaxRequestBodyBytes, "MaxRequestBodyBytes must be at least 1");
        if (RequestTimeout is { } t && t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RequestTimeout), t, "RequestTimeout must be positive");
        if (RetryAfterSeconds < 1) throw new ArgumentOutOfRangeException(nameof(RetryAfterSeconds), RetryAfterSeconds, "RetryAfterSeconds must be at least 1");
    }
}
