namespace Qwen2.Native.Generation;

/// <summary>Counts and timings of one generation.</summary>
/// <param name="PromptTokens">Tokens run through the model before the first new token (only the new ones when a cache is reused).</param>
/// <param name="GeneratedTokens">Tokens produced.</param>
/// <param name="DecodeSteps">Forward calls of one token each (the last generated token is not run until the sequence continues).</param>
/// <param name="PrefillTime">Time spent on the prompt.</param>
/// <param name="DecodeTime">Time spent on decode steps, sampling included.</param>
/// <param name="StopReason">Why it ended.</param>
public sealed record GenerationStats(int PromptTokens, int GeneratedTokens, int DecodeSteps, TimeSpan PrefillTime, TimeSpan DecodeTime, StopReason StopReason)
{
    /// <summary>Prompt tokens per second.</summary>
    public double PrefillTokensPerSecond => PrefillTime > TimeSpan.Zero ? PromptTokens / PrefillTime.TotalSeconds : 0;

    /// <summary>Decode steps per second.</summary>
    public double DecodeTokensPerSecond => DecodeTime > TimeSpan.Zero ? DecodeSteps / DecodeTime.TotalSeconds : 0;

    /// <summary>One line for a console: counts, rates and the stop reason.</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"prompt {PromptTokens} tokens in {PrefillTime.TotalMilliseconds:F0} ms ({PrefillTokensPerSecond:F1} tok/s); generated {GeneratedTokens} tokens, {DecodeSteps} decode steps in {DecodeTime.TotalMilliseconds:F0} ms ({DecodeTokensPerSecond:F1} tok/s); stop: {StopReason}");
}
