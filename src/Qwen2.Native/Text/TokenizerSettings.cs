namespace Qwen2.Native.Text;

/// <summary>The fields of tokenizer_config.json that matter for using a tokenizer; defaults where the file is absent.</summary>
public sealed record TokenizerSettings
{
    /// <summary>The Jinja chat template (the one named "default" where the file lists several), or null.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>All chat templates by name; a single template is named "default".</summary>
    public IReadOnlyDictionary<string, string> ChatTemplates { get; init; } = new Dictionary<string, string>();

    /// <summary>The end-of-sequence token text (e.g. <c>&lt;|im_end|&gt;</c>), or null.</summary>
    public string? EosToken { get; init; }

    /// <summary>The padding token text, or null.</summary>
    public string? PadToken { get; init; }

    /// <summary>The beginning-of-sequence token text, or null (Qwen has none).</summary>
    public string? BosToken { get; init; }

    /// <summary>The unknown token text, or null (byte-level BPE needs none).</summary>
    public string? UnkToken { get; init; }

    /// <summary>Whether transformers' slow tokenizers prepend the BOS token; the tokenizer.json pipeline that <see cref="Qwen2Tokenizer.Encode(string)"/> follows does not.</summary>
    public bool AddBosToken { get; init; }

    /// <summary>Whether the model's inputs are limited to <see cref="ModelMaxLength"/> tokens, or null where not given.</summary>
    public long? ModelMaxLength { get; init; }

    /// <summary>Whether decoding should clean up spaces before punctuation (false for Qwen; <see cref="Qwen2Tokenizer.Decode"/> never does).</summary>
    public bool CleanUpTokenizationSpaces { get; init; }

    /// <summary>The <c>tokenizer_class</c> field, e.g. "Qwen2Tokenizer", or null.</summary>
    public string? TokenizerClass { get; init; }
}
