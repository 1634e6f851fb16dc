namespace Qwen2.Native;

/// <summary>What a cached forward call returns, as Hugging Face's <c>(logits, past_key_values)</c>.</summary>
/// <param name="Logits">The logits.</param>
/// <param name="PastKeyValues">The updated caches when <c>useCache</c> was set, else null.</param>
public readonly record struct ForwardOutput(Logits Logits, PastKeyValues? PastKeyValues);
