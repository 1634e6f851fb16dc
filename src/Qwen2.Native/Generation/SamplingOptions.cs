namespace Qwen2.Native.Generation;

/// <summary>
/// How the next token is picked from the logits. Temperature 0 is greedy (argmax). The filters run in Hugging Face's
/// order: repetition penalty, temperature, top-k, top-p, min-p; then one draw from the renormalized distribution.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Greedy decoding: always the most likely token.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Softmax temperature; 0 means greedy. Hugging Face name: <c>temperature</c>.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep only the k most likely tokens; 0 turns the filter off. Hugging Face name: <c>top_k</c>.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability sums to at least this; 1 is off. <c>top_p</c>.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Drop tokens whose probability is below this fraction of the top token's; 0 is off. <c>min_p</c>.</summary>
    public double MinP { get; init; }
    /// <summary>
    /// Divides positive logits (multiplies negative ones) of every token already in the context, prompt included,
    /// as in the CTRL paper and Hugging Face; 1 is off. <c>repetition_penalty</c>.
    /// </summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>Seed of the random draws: the same seed, prompt and options give the same tokens. Null: a fresh seed.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Whether these options always pick the argmax.</summary>
    public bool IsGreedy => Temperature == 0;

    /// <summary>Checks every field; the exception's parameter name is the Hugging Face field name.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field is out of its range.</exception>
    public void Validate()
    {
        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
            throw new ArgumentOutOfRangeException("temperature", Temperature, "temperature must be a finite number >= 0 (0 is greedy)");
        if (TopK < 0) throw new ArgumentOutOfRangeException("top_k", TopK, "top_k must be >= 0 (0 turns it off)");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException("top_p", TopP, "top_p must be in (0, 1] (1 turns it off)");
        if (!(MinP >= 0 && MinP <= 1)) throw new ArgumentOutOfRangeException("min_p", MinP, "min_p must be in [0, 1] (0 turns it off)");
        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty))
            throw new ArgumentOutOfRangeException("repetition_penalty", RepetitionPenalty, "repetition_penalty must be a finite number > 0 (1 turns it off)");
    }
}
