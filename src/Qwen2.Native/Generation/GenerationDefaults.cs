using System.Runtime.CompilerServices;
using Qwen2.Native.Text;

namespace Qwen2.Native.Generation;

/// <summary>
/// What generation does where the caller says nothing: the checkpoint's generation_config.json sampling and the ids
/// that end a reply. Read once per model and shared by everything that generates over it (sessions, chats, chat
/// clients, batch generators, pipelines), so they cannot disagree.
/// </summary>
internal sealed class GenerationDefaults
{
    // Keyed by the model so a session made from a bare model gets the same object as a pipeline over it; the entry
    // goes with the model.
    private static readonly ConditionalWeakTable<Qwen2Model, GenerationDefaults> ByModel = new();

    private GenerationDefaults(GenerationConfig config, Qwen2Config model)
    {
        Config = config;
        StopTokenIds = config.EosTokenIds.Concat(model.EosTokenIds).Distinct().ToArray();
        Options = GenerationOptions.FromConfig(config);
    }

    /// <summary>The model directory's generation_config.json (defaults when absent).</summary>
    public GenerationConfig Config { get; }

    /// <summary>End-of-sequence ids: generation_config.json's, then config.json's, without repeats.</summary>
    public IReadOnlyList<int> StopTokenIds { get; }

    /// <summary>The options generation_config.json asks for (<see cref="GenerationOptions.FromConfig"/>, no seed).</summary>
    public GenerationOptions Options { get; }

    /// <summary>The defaults of <paramref name="model"/>, reading its directory's generation_config.json (none for GGUF) the first time.</summary>
    /// <exception cref="CheckpointException">generation_config.json is malformed; the message names the field.</exception>
    public static GenerationDefaults For(Qwen2Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        // A GGUF file has no generation_config.json: the engine's no-config defaults (greedy), eos from the tokenizer metadata.
        return ByModel.GetValue(model, m => new GenerationDefaults(m.IsGguf ? new GenerationConfig() : GenerationConfig.Load(m.Directory), m.Config));
    }

    /// <summary><paramref name="options"/>, or these defaults when null, checked.</summary>
    public GenerationOptions Resolve(GenerationOptions? options)
    {
        options ??= Options;
        options.Validate();
        return options;
    }

    /// <summary>
    /// <paramref name="ids"/> plus the tokenizer's eos token (Qwen's &lt;|im_end|&gt;), like llama.cpp's end-of-generation
    /// set: a base model's config names only &lt;|endoftext|&gt;, but a chat turn ends at &lt;|im_end|&gt;.
    /// </summary>
    public static IReadOnlyList<int> WithTokenizerEos(IReadOnlyList<int> ids, Qwen2Tokenizer tokenizer)
    {
        var all = new List<int>(ids);
        if (tokenizer.Settings.EosToken is { } eos && tokenizer.TokenToId(eos) is int id && !all.Contains(id)) all.Add(id);
        return all;
    }
}
