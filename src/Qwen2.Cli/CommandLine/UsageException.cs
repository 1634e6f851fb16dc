namespace Qwen2.Cli;

/// <summary>A bad command-line argument.</summary>
internal sealed class UsageException(string message) : Exception(message);
