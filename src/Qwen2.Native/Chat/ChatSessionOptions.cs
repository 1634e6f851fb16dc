using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Chat;

/// <summary>Options of a <see cref="ChatSession"/>.</summary>
public sealed record ChatSessionOptions
{
    /// <summary>The system prompt; null uses the template's default (Qwen2.5: "You are Qwen, created by Alibaba Cloud...").</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>The template; null reads it from the tokenizer's tokenizer_config.json.</summary>
    public ChatTemplate? Template { get; init; }
    /// <summary>Qwen3 only: false asks for an answer without a reasoning block.</summary>
    public bool EnableThinking { get; init; } = true;
    /// <summary>Cache size and behaviour.</summary>
    public SessionOptions Session { get; init; } = new();
}
