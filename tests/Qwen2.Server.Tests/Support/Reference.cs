using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Server.Tests;

/// <summary>
/// What a request should produce, computed without the server or the batch generator: the prompt through the chat
/// template and tokenizer, then the single-sequence InferenceSession with the same options and stop ids.
/// </summary>
internal static class Reference
{
    public static int[] ChatPrompt(Qwen2Pipeline pipeline, params ChatMessage[] messages) =>
        pipeline.Tokenizer.Encode(pipeline.ChatTemplate.Render(messages));

    public static (string Text, int[] Ids, string FinishReason) Generate(Qwen2Pipeline pipeline, int[] prompt, SamplingOptions sampling, int maxTokens)
    {
        var options = new GenerationOptions { Sampling = sampling, MaxNewTokens = maxTokens, StopTokenIds = pipeline.TextStopTokenIds };
        var ids = new InferenceSession(pipeline.Model, new SessionOptions { CacheCapacity = prompt.Length + maxTokens }).Generate(prompt, options).ToArray();
        bool stopped = ids.Length > 0 && pipeline.TextStopTokenIds.Contains(ids[^1]);
        // Ids past the tokenizer (the embedding's padding rows, which a random model may pick) decode to nothing, as in the server.
        var known = ids.Where(id => id < pipeline.Tokenizer.VocabSize).ToArray();
        return (pipeline.Tokenizer.Decode(known, skipSpecialTokens: true), ids, stopped ? "stop" : "length");
    }

    /// <summary>
    /// What a request with temperature 0 and no other field asks for: the fields it leaves out come from
    /// generation_config.json (as in vLLM), so Qwen2.5-Instruct's repetition_penalty still applies.
    /// </summary>
    public static SamplingOptions Greedy(Qwen2Pipeline pipeline) => pipeline.GenerationConfig.ToSampling(null) with { Temperature = 0 };

    /// <summary>Seeded sampling with every filter named, so the request's JSON fields fix the same options.</summary>
    public static SamplingOptions Seeded(ulong seed) => new() { Temperature = 0.9, TopK = 40, TopP = 0.95, MinP = 0, RepetitionPenalty = 1.1, Seed = seed };

    /// <summary>The JSON fields of <see cref="Seeded"/>.</summary>
    public static string SeededJson(ulong seed) => $"\"temperature\":0.9,\"top_k\":40,\"top_p\":0.95,\"min_p\":0,\"repetition_penalty\":1.1,\"seed\":{seed}";
}
