namespace Qwen2.Native;

/// <summary>A cache has no room for the tokens of a call; nothing was changed.</summary>
public sealed class CacheFullException(string message) : InvalidOperationException(message);
