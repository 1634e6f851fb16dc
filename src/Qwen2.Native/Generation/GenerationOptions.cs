using Qwen2.Native.Structured;

namespace Qwen2.Native.Generation;

/// <summary>What one call to generate does: how to sample, when to stop, and how to turn tokens into text.</summary>
public sealed record GenerationOptions
{
    /// <summary>How each token is picked (default: greedy).</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;

    /// <summary>Most tokens to generate (the end-of-sequence token counts as one).</summary>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>
    /// Ids that end generation once produced (the id is still returned). Null: the model's end-of-sequence ids
    /// (generation_config.json's and config.json's), plus the tokenizer's eos token where text generation knows it.
    /// </summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    /// <summary>Keep generating past end-of-sequence ids (for benchmarks and for comparing with references that never stop).</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Text generation only: stop once the text contains one of these; the stop string itself is not returned.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();

    /// <summary>Text generation only: leave tokens flagged special (such as &lt;|im_end|&gt;) out of the text.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>
    /// Null: no log-probabilities. 0 to <see cref="TokenLogprobs.MaxTop"/>: every generated token's log-probability
    /// (<see cref="TokenLogprobs"/>) with that many most likely alternatives, read from
    /// <see cref="Serving.GenerationRequest.GetLogprobs"/> or <see cref="InferenceSession.LastLogprobs"/>.
    /// </summary>
    public int? TopLogprobs { get; init; }

    /// <summary>
    /// Free text (the default), any JSON object, or JSON valid for a schema (<see cref="Structured.ResponseFormat"/>):
    /// a JSON format constrains every sampled token, whatever the sampling settings, and generation ends with
    /// <see cref="StopReason.EndOfSequence"/> once the value is complete. It needs the tokenizer's vocabulary: honoured by
    /// <see cref="TextGeneration"/>, a <see cref="Serving.BatchGenerator"/> made from a pipeline, and an
    /// <see cref="InferenceSession"/> whose <see cref="InferenceSession.Tokenizer"/> is set.
    /// </summary>
    public ResponseFormat ResponseFormat { get; init; } = ResponseFormat.Text;

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field is out of range; the parameter name says which.</exception>
    /// <exception cref="ArgumentException">A stop string is empty.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Sampling, nameof(Sampling));
        Sampling.Validate();
        if (MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "MaxNewTokens must be >= 0");
        if (TopLogprobs is int top && (uint)top > TokenLogprobs.MaxTop)
            throw new ArgumentOutOfRangeException(nameof(TopLogprobs), top, $"TopLogprobs must be between 0 and {TokenLogprobs.MaxTop} (or null for none)");
        ArgumentNullException.ThrowIfNull(StopStrings, nameof(StopStrings));
        ArgumentNullException.ThrowIfNull(ResponseFormat, nameof(ResponseFormat));
        foreach (var s in StopStrings)
            if (string.IsNullOrEmpty(s)) throw new ArgumentException("a stop string is empty; it would stop generation before the first token", nameof(StopStrings));
    }

    /// <summary>
    /// The constraint of <see cref="ResponseFormat"/> for one generation over <paramref name="vocabSize"/> logits, ending
    /// at <paramref name="stop"/>'s ids once the value may end; null for text.
    /// </summary>
    /// <exception cref="InvalidOperationException">A JSON format without a tokenizer to read the vocabulary from.</exception>
    internal TokenConstraint? CreateConstraint(Text.Qwen2Tokenizer? tokenizer, int vocabSize, StopCriteria stop)
    {
        if (ResponseFormat.Grammar is not { } grammar) return null;
        if (tokenizer is null)
            throw new InvalidOperationException("a JSON response format needs the tokenizer's vocabulary: generate through TextGeneration or a BatchGenerator made from a Qwen2Pipeline, or set InferenceSession.Tokenizer");
        return new TokenConstraint(grammar, TokenVocabulary.For(tokenizer, vocabSize), stop.StopIds);
    }

    /// <summary>The defaults a checkpoint's <c>generation_config.json</c> asks for, with <paramref name="seed"/>.</summary>
    public static GenerationOptions FromConfig(GenerationConfig config, ulong? seed = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var o = new GenerationOptions { Sampling = config.ToSampling(seed) };
        return config.MaxNewTokens is int m ? o with { MaxNewTokens = m } : o;
    }
}
