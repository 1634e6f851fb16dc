namespace Qwen2.Native.Generation;

/// <summary>
/// When one generation ends, checked after each token in this order: a stop id (the token is kept), the token limit,
/// then a full context.
/// </summary>
internal sealed class StopCriteria
{
    private readonly int[] _stopIds;

    /// <summary>The criteria of <paramref name="options"/>; its null stop ids mean <paramref name="defaultStopIds"/>.</summary>
    public StopCriteria(GenerationOptions options, IReadOnlyList<int> defaultStopIds)
    {
        _stopIds = options.IgnoreEos ? [] : (options.StopTokenIds ?? defaultStopIds).ToArray();
        MaxNewTokens = options.MaxNewTokens;
    }

    /// <summary>The ids that end generation (none with IgnoreEos).</summary>
    public IReadOnlyList<int> StopIds => _stopIds;

    /// <summary>Most tokens to generate.</summary>
    public int MaxNewTokens { get; }

    /// <summary>Why generation ends after <paramref name="token"/>, the <paramref name="generated"/>-th new token; None: it goes on.</summary>
    public StopReason After(int token, int generated, bool contextFull) =>
        Array.IndexOf(_stopIds, token) >= 0 ? StopReason.EndOfSequence
        : generated >= MaxNewTokens ? StopReason.MaxTokens
        : contextFull ? StopReason.ContextFull
        : StopReason.None;
}
