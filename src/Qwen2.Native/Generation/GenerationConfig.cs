using System.Text.Json;

namespace Qwen2.Native.Generation;

/// <summary>
/// The checkpoint's <c>generation_config.json</c>: the sampling defaults its authors chose and the ids that end a
/// reply. Every field is optional; an absent file gives Hugging Face's defaults (greedy, no stop ids beyond config.json's).
/// </summary>
public sealed record GenerationConfig
{
    /// <summary>End-of-sequence ids (one or several).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
    /// <summary>Beginning-of-sequence id, if any.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>Padding id, if any.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>Whether to sample; false means greedy whatever the temperature says (as in Hugging Face).</summary>
    public bool DoSample { get; init; }
    /// <summary>Softmax temperature.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep the k most likely tokens (0: off).</summary>
    public int TopK { get; init; } = 50;
    /// <summary>Nucleus sampling mass (1: off).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Drop tokens below this fraction of the most likely token's probability (0: off).</summary>
    public double MinP { get; init; }
    /// <summary>CTRL-style repetition penalty (1: off).</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>New-token limit, when the file gives one.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>Reads <c>generation_config.json</c> from <paramref name="directory"/>; absent file: defaults.</summary>
    /// <exception cref="CheckpointException">The file is malformed or a field has the wrong type; the message names it.</exception>
    public static GenerationConfig Load(string directory)
    {
        string path = Path.Combine(directory, "generation_config.json");
        return File.Exists(path) ? Parse(File.ReadAllText(path), path) : new GenerationConfig();
    }

    /// <summary>Parses the text of a <c>generation_config.json</c>; <paramref name="source"/> names it in errors.</summary>
    public static GenerationConfig Parse(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new CheckpointException(source, $"malformed JSON: {e.Message}", inner: e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointException(source, "the generation config must be a JSON object");
            var r = new JsonFieldReader(doc.RootElement, source);
            var d = new GenerationConfig();
            var cfg = new GenerationConfig
            {
                EosTokenIds = r.IntOrIntList("eos_token_id"),
                BosTokenId = r.Int("bos_token_id"),
                PadTokenId = r.Int("pad_token_id"),
                DoSample = r.Bool("do_sample") ?? false,
                Temperature = r.Double("temperature") ?? d.Temperature,
                TopK = r.Int("top_k") ?? d.TopK,
                TopP = r.Double("top_p") ?? d.TopP,
                MinP = r.Double("min_p") ?? d.MinP,
                RepetitionPenalty = r.Double("repetition_penalty") ?? d.RepetitionPenalty,
                MaxNewTokens = r.Int("max_new_tokens"),
            };
            try
            {
                // Every field is checked, even those greedy decoding ignores: a bad file should say so whatever do_sample is.
                new SamplingOptions { Temperature = cfg.Temperature, TopK = cfg.TopK, TopP = cfg.TopP, MinP = cfg.MinP, RepetitionPenalty = cfg.RepetitionPenalty }.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new CheckpointException(source, e.Message, field: e.ParamName, inner: e);
            }
            return cfg;
        }
    }

    /// <summary>The sampling these defaults describe: greedy unless <see cref="DoSample"/>.</summary>
    public SamplingOptions ToSampling(ulong? seed) => DoSample
        ? new SamplingOptions { Temperature = Temperature, TopK = TopK, TopP = TopP, MinP = MinP, RepetitionPenalty = RepetitionPenalty, Seed = seed }
        : new SamplingOptions { Temperature = 0, RepetitionPenalty = RepetitionPenalty, Seed = seed };
}
