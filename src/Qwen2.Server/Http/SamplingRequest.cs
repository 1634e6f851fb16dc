using Qwen2.Native.Generation;

namespace Qwen2.Server.Http;

/// <summary>
/// The sampling, stopping and streaming fields chat and text completions share, read and checked. Fields a request
/// leaves out fall back to the checkpoint's generation_config.json, as everywhere else in the engine.
/// </summary>
internal sealed record SamplingRequest(SamplingOptions Sampling, int? MaxTokens, IReadOnlyList<string> Stops, bool Stream, bool IncludeUsage, bool IgnoreEos, int? TopLogprobs)
{
    /// <summary>What the reply must be: text, or JSON (response_format, or a forced tool call's arguments).</summary>
    public Native.Structured.ResponseFormat ResponseFormat { get; init; } = Native.Structured.ResponseFormat.Text;

    /// <summary>Most stop strings a request may give (OpenAI allows 4; llama.cpp and vLLM more).</summary>
    public const int MaxStops = 16;

    /// <summary>Reads the fields of a chat (<paramref name="chat"/>) or text completion request.</summary>
    public static SamplingRequest Read(JsonFields f, GenerationConfig config, bool chat)
    {
        if (f.Integer("n", 1, long.MaxValue) is > 1) throw ApiException.BadRequest("n must be 1: one choice per request is supported", "n");
        int? topLogprobs = chat ? ReadChatLogprobs(f) : (int?)f.Integer("logprobs", 0, TokenLogprobs.MaxTop);
        if (f.Bool("echo") == true) throw ApiException.BadRequest("echo is not supported by this server", "echo");
        if (f.Has("best_of") && f.Integer("best_of", 1, long.MaxValue) > 1) throw ApiException.BadRequest("best_of must be 1", "best_of");
        foreach (var name in (ReadOnlySpan<string>)["frequency_penalty", "presence_penalty"])
            if (f.Number(name, -2, 2, "in [-2, 2]") is double p && p != 0)
                throw ApiException.BadRequest($"{name} is not supported (only 0); use repetition_penalty, which this server supports", name);

        ulong? seed = f.Integer("seed", long.MinValue, long.MaxValue) is long s ? unchecked((ulong)s) : null;
        double? temperature = f.Number("temperature", 0, 1e6, "a number >= 0 (0 is greedy)");
        var fromConfig = config.ToSampling(seed);
        // An explicit temperature > 0 samples even when the checkpoint's default is greedy (do_sample false): then
        // the checkpoint's other filters apply, as with qwen2 generate.
        var sampling = temperature is > 0 && fromConfig.IsGreedy
            ? new SamplingOptions { Temperature = temperature.Value, TopK = config.TopK, TopP = config.TopP, MinP = config.MinP, RepetitionPenalty = config.RepetitionPenalty, Seed = seed }
            : fromConfig with { Temperature = temperature ?? fromConfig.Temperature };
        long? topK = f.Integer("top_k", -1, int.MaxValue);
        sampling = sampling with
        {
            // -1 turns top_k off in vLLM and llama.cpp; 0 does here.
            TopK = topK is long k ? (int)Math.Max(0, k) : sampling.TopK,
            TopP = f.Number("top_p", double.Epsilon, 1, "in (0, 1]") ?? sampling.TopP,
            MinP = f.Number("min_p", 0, 1, "in [0, 1]") ?? sampling.MinP,
            RepetitionPenalty = f.Number("repetition_penalty", double.Epsilon, 1e6, "a number > 0 (1 is off)") ?? sampling.RepetitionPenalty,
        };

        long? maxTokens = f.Integer("max_completion_tokens", 1, int.MaxValue) ?? f.Integer("max_tokens", 1, int.MaxValue);
        var stops = f.StringOrStrings("stop", MaxStops) ?? [];
        for (int i = 0; i < stops.Count; i++)
            if (stops[i].Length == 0) throw ApiException.BadRequest($"stop[{i}] is empty; a stop string must have at least one character", "stop");

        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = false;
        if (f.Get("stream_options") is { } so)
        {
            if (so.ValueKind != System.Text.Json.JsonValueKind.Object) throw JsonFields.Mistyped("stream_options", "an object", so);
            includeUsage = new JsonFields(so).Bool("include_usage") ?? false;
        }
        // vLLM's extension: keep generating past end-of-sequence tokens (benchmarks want a fixed length).
        bool ignoreEos = f.Bool("ignore_eos") ?? false;
        return new SamplingRequest(sampling, (int?)maxTokens, stops, stream, includeUsage, ignoreEos, topLogprobs);
    }

    /// <summary>Chat's <c>logprobs</c> (a boolean) and <c>top_logprobs</c> (alternatives, which need logprobs true), as OpenAI defines them.</summary>
    private static int? ReadChatLogprobs(JsonFields f)
    {
        bool logprobs = f.Bool("logprobs") ?? false;
        long? top = f.Integer("top_logprobs", 0, TokenLogprobs.MaxTop);
        if (top is not null && !logprobs) throw ApiException.BadRequest("top_logprobs needs logprobs set to true", "top_logprobs");
        return logprobs ? (int)(top ?? 0) : null;
    }

    /// <summary>The generation options of a prompt of <paramref name="promptTokens"/> tokens in a context of <paramref name="context"/>.</summary>
    public GenerationOptions ToOptions(int promptTokens, int context, IReadOnlyList<int> stopTokenIds)
    {
        // Without max_tokens a reply may fill the context, as with OpenAI; it then ends with finish_reason "length".
        int room = context - promptTokens;
        return new GenerationOptions
        {
            Sampling = Sampling, MaxNewTokens = Math.Min(MaxTokens ?? room, room), StopTokenIds = stopTokenIds, IgnoreEos = IgnoreEos, TopLogprobs = TopLogprobs,
            ResponseFormat = ResponseFormat,
        };
    }
}
