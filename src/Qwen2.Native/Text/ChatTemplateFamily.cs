namespace Qwen2.Native.Text;

/// <summary>Which Qwen chat template a checkpoint ships.</summary>
public enum ChatTemplateFamily
{
    /// <summary>Qwen2: ChatML with the default system prompt "You are a helpful assistant."</summary>
    Qwen2,
    /// <summary>Qwen2.5: ChatML with the default system prompt "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."</summary>
    Qwen25,
    /// <summary>Qwen3: ChatML with no default system prompt; &lt;think&gt; reasoning is dropped from earlier assistant turns.</summary>
    Qwen3,
    /// <summary>Another ChatML template without a default system prompt.</summary>
    ChatMl,
}
