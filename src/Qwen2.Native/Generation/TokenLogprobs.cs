using System.Numerics.Tensors;

namespace Qwen2.Native.Generation;

/// <summary>
/// The log-probabilities of one generated token: the token picked and the most likely tokens at that step. They are
/// the log-softmax of the model's own logits, before the repetition penalty, temperature and filters change them
/// (vLLM's default, and what OpenAI reports), so they say what the model predicted whatever the sampler did.
/// </summary>
/// <param name="Chosen">The token that was generated, with its log-probability.</param>
/// <param name="Top">The most likely tokens, most likely first (ties: lower id first); as many as asked for.</param>
public sealed record TokenLogprobs(TokenLogprob Chosen, IReadOnlyList<TokenLogprob> Top)
{
    /// <summary>Most alternatives a step may report (OpenAI's and vLLM's limit for <c>top_logprobs</c>).</summary>
    public const int MaxTop = 20;

    /// <summary>
    /// The log-probabilities of <paramref name="chosen"/> and of the <paramref name="top"/> most likely tokens in
    /// <paramref name="logits"/>; <paramref name="scratch"/> (at least as long as the logits) is overwritten.
    /// </summary>
    internal static TokenLogprobs Compute(ReadOnlySpan<float> logits, int chosen, int top, Span<float> scratch)
    {
        if ((uint)top > MaxTop) throw new ArgumentOutOfRangeException(nameof(top), top, $"between 0 and {MaxTop} alternatives can be reported");
        if ((uint)chosen >= (uint)logits.Length) throw new ArgumentOutOfRangeException(nameof(chosen), chosen, $"token {chosen} is outside the {logits.Length} logits");
        // ln p_i = x_i - (m + ln sum_j exp(x_j - m)); the exponentials are vectorized, their sum taken in double.
        float max = TensorPrimitives.Max(logits);
        var e = scratch[..logits.Length];
        TensorPrimitives.Subtract(logits, max, e);
        TensorPrimitives.Exp(e, e);
        double sum = 0;
        foreach (float v in e) sum += v;
        double logNorm = max + Math.Log(sum);
        return new TokenLogprobs(new TokenLogprob(chosen, (float)(logits[chosen] - logNorm)), Best(logits, top, logNorm));
    }

    /// <summary>The <paramref name="count"/> largest logits as log-probabilities, by one pass with a sorted insertion list.</summary>
    private static TokenLogprob[] Best(ReadOnlySpan<float> logits, int count, double logNorm)
    {
        if (count == 0) return [];
        Span<int> ids = stackalloc int[MaxTop];
        Span<float> values = stackalloc float[MaxTop];
        int n = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float v = logits[i];
            // Strictly greater: a later id tied with a kept one stays behind it. NaN never enters.
            if (n == count && !(v > values[n - 1])) continue;
            if (float.IsNaN(v)) continue;
            int at = n < count ? n++ : n - 1;
            while (at > 0 && v > values[at - 1]) { values[at] = values[at - 1]; ids[at] = ids[at - 1]; at--; }
            values[at] = v;
            ids[at] = i;
        }
        var result = new TokenLogprob[n];
        for (int i = 0; i < n; i++) result[i] = new TokenLogprob(ids[i], (float)(values[i] - logNorm));
        return result;
    }
}
