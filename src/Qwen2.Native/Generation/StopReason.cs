namespace Qwen2.Native.Generation;

/// <summary>Why a generation ended.</summary>
public enum StopReason
{
    /// <summary>Still running, or the caller stopped reading the tokens.</summary>
    None,
    /// <summary>An end-of-sequence (stop) token was produced.</summary>
    EndOfSequence,
    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> tokens were produced.</summary>
    MaxTokens,
    /// <summary>The text reached one of <see cref="GenerationOptions.StopStrings"/>.</summary>
    StopString,
    /// <summary>The cache had no room for another token.</summary>
    ContextFull,
    /// <summary>The cancellation token fired.</summary>
    Cancelled,
}
