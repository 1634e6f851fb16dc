using Qwen2.Native.Text;

namespace Qwen2.Native.Generation;

/// <summary>
/// A checkpoint ready to generate: its model, tokenizer, chat template and generation defaults, loaded together as
/// Hugging Face's <c>from_pretrained</c> loads them. Chat sessions, chat clients and batch generators take one.
/// </summary>
/// <remarks>
/// Everything that generates over the same model shares one set of defaults, read once from the model directory's
/// generation_config.json: a <see cref="InferenceSession"/> made from <see cref="Model"/> alone sees the same
/// <see cref="DefaultOptions"/> and <see cref="DefaultStopTokenIds"/> as this pipeline.
/// </remarks>
public sealed class Qwen2Pipeline : IDisposable
{
    private readonly GenerationDefaults _defaults;
    private readonly bool _ownsModel;
    private ChatTemplate? _template;

    /// <summary>
    /// A pipeline over a model and tokenizer the caller loaded (and keeps: disposing the pipeline leaves the model
    /// alone). The generation defaults come from the model directory's generation_config.json.
    /// </summary>
    /// <exception cref="CheckpointException">The model directory's generation_config.json is malformed.</exception>
    public Qwen2Pipeline(Qwen2Model model, Qwen2Tokenizer tokenizer) : this(model, tokenizer, ownsModel: false)
    {
    }

    private Qwen2Pipeline(Qwen2Model model, Qwen2Tokenizer tokenizer, bool ownsModel)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _defaults = GenerationDefaults.For(model);
        Model = model;
        Tokenizer = tokenizer;
        TextStopTokenIds = GenerationDefaults.WithTokenizerEos(_defaults.StopTokenIds, tokenizer);
        _ownsModel = ownsModel;
    }

    /// <summary>
    /// Loads a checkpoint as Hugging Face's <c>from_pretrained</c> does: <paramref name="idOrDirectory"/> is a checkpoint
    /// directory or a hub id ("Qwen/Qwen2.5-0.5B-Instruct") found in the local Hugging Face cache (null: $QWEN2_MODEL;
    /// see <see cref="Qwen2Model.FromPretrained"/>). The pipeline owns the model and disposes it.
    /// </summary>
    /// <exception cref="ModelNotFoundException">Nothing was found; the message says how to download the model.</exception>
    /// <exception cref="CheckpointException">A checkpoint file (weights, config, tokenizer, generation_config.json) is missing or malformed.</exception>
    public static Qwen2Pipeline FromPretrained(string? idOrDirectory, ModelOptions? options = null)
    {
        var model = Qwen2Model.FromPretrained(idOrDirectory, options);
        try
        {
            return new Qwen2Pipeline(model, Qwen2Tokenizer.Load(model.Directory), ownsModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The model.</summary>
    public Qwen2Model Model { get; }

    /// <summary>The tokenizer.</summary>
    public Qwen2Tokenizer Tokenizer { get; }

    /// <summary>The tokenizer's chat template (tokenizer_config.json's chat_template), read on first use.</summary>
    /// <exception cref="NotSupportedException">The tokenizer has no chat_template or it is not ChatML (a base model: pass raw text).</exception>
    public ChatTemplate ChatTemplate => _template ??= ChatTemplate.Parse(Tokenizer.Settings.ChatTemplate, Qwen2Tokenizer.TokenizerConfigFile);

    /// <summary>The model directory's generation_config.json (Hugging Face's defaults when it is absent).</summary>
    public GenerationConfig GenerationConfig => _defaults.Config;

    /// <summary>End-of-sequence ids, where token generation stops by default: generation_config.json's, then config.json's, without repeats.</summary>
    public IReadOnlyList<int> DefaultStopTokenIds => _defaults.StopTokenIds;

    /// <summary>
    /// Where text generation and chat stop by default: <see cref="DefaultStopTokenIds"/> plus the tokenizer's eos token
    /// (Qwen's &lt;|im_end|&gt;), like llama.cpp's end-of-generation set: a base model's config names only
    /// &lt;|endoftext|&gt;, but a chat turn ends at &lt;|im_end|&gt;.
    /// </summary>
    public IReadOnlyList<int> TextStopTokenIds { get; }

    /// <summary>What a generation given no options does: generation_config.json's sampling (<see cref="GenerationOptions.FromConfig"/>, no seed).</summary>
    public GenerationOptions DefaultOptions => _defaults.Options;

    /// <summary>Disposes the model when <see cref="FromPretrained"/> loaded it; a model given to the constructor stays with its owner.</summary>
    public void Dispose()
    {
        if (_ownsModel) Model.Dispose();
    }
}
