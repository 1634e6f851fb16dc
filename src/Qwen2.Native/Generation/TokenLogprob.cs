namespace Qwen2.Native.Generation;

/// <summary>A token id and its natural-log probability under the model.</summary>
/// <param name="Token">The token id.</param>
/// <param name="Logprob">ln p(token), at most 0.</param>
public readonly record struct TokenLogprob(int Token, float Logprob);
