namespace Qwen2.Native;

/// <summary>The tokens one forward step appends to one sequence's caches.</summary>
/// <param name="Cache">The sequence's caches.</param>
/// <param name="Tokens">How many tokens the step appends.</param>
internal readonly record struct CacheWrite(PastKeyValues Cache, int Tokens);
