namespace Qwen2.Native;

/// <summary>Which positions a forward call returns logits for.</summary>
public enum LogitsSelection
{
    /// <summary>One row per input token (a 512-token prompt of Qwen2's vocabulary is 311 MB).</summary>
    All,
    /// <summary>Only the last input token's row: all that generation needs.</summary>
    Last,
}
