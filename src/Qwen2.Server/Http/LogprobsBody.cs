using System.Text;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;
using Qwen2.Server.Protocol;

namespace Qwen2.Server.Http;

/// <summary>
/// Log-probabilities in OpenAI's two shapes. A token's text is its bytes read as UTF-8 (U+FFFD for a partial
/// character, whose exact bytes chat gives alongside); special tokens show as themselves. A probability of zero (a
/// logit of -infinity) is written as -9999, as OpenAI and vLLM write it, since JSON has no infinity.
/// </summary>
internal static class LogprobsBody
{
    private const float Floor = -9999f;

    public static ChatLogprobs? Chat(IReadOnlyList<TokenLogprobs>? steps, Qwen2Tokenizer tokenizer)
    {
        if (steps is null) return null;
        var content = new ChatTokenLogprob[steps.Count];
        for (int i = 0; i < content.Length; i++)
        {
            var s = steps[i];
            var top = new ChatTopLogprob[s.Top.Count];
            for (int j = 0; j < top.Length; j++) top[j] = new ChatTopLogprob(Text(s.Top[j].Token, tokenizer), Value(s.Top[j].Logprob), Bytes(s.Top[j].Token, tokenizer));
            content[i] = new ChatTokenLogprob(Text(s.Chosen.Token, tokenizer), Value(s.Chosen.Logprob), Bytes(s.Chosen.Token, tokenizer), top);
        }
        return new ChatLogprobs(content);
    }

    /// <summary>The completions shape; <paramref name="offset"/> is the text offset of the first token, advanced past the last.</summary>
    public static TextLogprobs? Text(IReadOnlyList<TokenLogprobs>? steps, Qwen2Tokenizer tokenizer, ref int offset)
    {
        if (steps is null) return null;
        int n = steps.Count;
        var tokens = new string[n];
        var values = new float[n];
        var tops = new Dictionary<string, float>[n];
        var offsets = new int[n];
        for (int i = 0; i < n; i++)
        {
            var s = steps[i];
            tokens[i] = Text(s.Chosen.Token, tokenizer);
            values[i] = Value(s.Chosen.Logprob);
            // Two ids can read as the same text (partial characters); the more likely one, listed first, is kept.
            tops[i] = new Dictionary<string, float>(s.Top.Count);
            foreach (var t in s.Top) tops[i].TryAdd(Text(t.Token, tokenizer), Value(t.Logprob));
            // As vLLM counts them: the lengths of the tokens' own texts before this one.
            offsets[i] = offset;
            offset += tokens[i].Length;
        }
        return new TextLogprobs(tokens, values, tops, offsets);
    }

    private static float Value(float logprob) => float.IsNegativeInfinity(logprob) ? Floor : logprob;

    // An id past the tokenizer (a padding row of the model's vocabulary) reads as no text.
    private static string Text(int id, Qwen2Tokenizer tokenizer) => Encoding.UTF8.GetString(tokenizer.TokenBytesOrEmpty(id));

    private static int[] Bytes(int id, Qwen2Tokenizer tokenizer)
    {
        var b = tokenizer.TokenBytesOrEmpty(id);
        var ints = new int[b.Length];
        for (int i = 0; i < b.Length; i++) ints[i] = b[i];
        return ints;
    }
}
