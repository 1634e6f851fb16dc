using Qwen2.Native.Generation;

namespace Qwen2.Cli;

/// <summary>The sampling and stopping flags of <c>generate</c> and <c>chat</c>; null fields fall back to generation_config.json.</summary>
internal sealed class SamplingFlags
{
    public Option<int> MaxTokens { get; } = new("--max-tokens", "-n") { Description = "Most new tokens.", DefaultValueFactory = _ => 256 };
    public Option<double?> Temperature { get; } = new("--temperature", "-t") { Description = "Softmax temperature; 0 is greedy. Default: generation_config.json (greedy without one)." };
    public Option<int?> TopK { get; } = new("--top-k") { Description = "Keep the k most likely tokens (0: off)." };
    public Option<double?> TopP { get; } = new("--top-p") { Description = "Nucleus sampling mass in (0, 1] (1: off)." };
    public Option<double?> MinP { get; } = new("--min-p") { Description = "Drop tokens under this fraction of the top token's probability (0: off)." };
    public Option<double?> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "Penalty on tokens already in the context (1: off)." };
    public Option<ulong?> Seed { get; } = new("--seed", "-s") { Description = "Seed of the random draws: same seed, same tokens." };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop when the text contains this string (repeatable; the string is not printed).", AllowMultipleArgumentsPerToken = false };
    public Option<bool> IgnoreEos { get; } = new("--ignore-eos") { Description = "Keep generating past end-of-sequence tokens (as references that never stop at eos do); by default generation stops at them, as Hugging Face's generate does." };
    public Option<int?> Threads { get; } = new("--threads") { Description = "Threads (default: processor count)." };
    public Option<int?> Context { get; } = new("--context", "-c") { Description = "KV cache size in tokens (default: 4096, capped by max_position_embeddings)." };

    public Option<string?> Quantize { get; } = CommonOptions.Quantize();

    public IEnumerable<Option> All => [MaxTokens, Temperature, TopK, TopP, MinP, RepetitionPenalty, Seed, Stop, IgnoreEos, Threads, Context, Quantize];

    public GenerationOptions Options(ParseResult p, GenerationConfig g)
    {
        var baseSampling = g.ToSampling(p.GetValue(Seed));
        double? t = p.GetValue(Temperature);
        // An explicit temperature > 0 turns sampling on even when the checkpoint's default is greedy (do_sample false).
        var s = t is > 0 && baseSampling.IsGreedy
            ? new SamplingOptions { Temperature = t.Value, TopK = g.TopK, TopP = g.TopP, MinP = g.MinP, RepetitionPenalty = g.RepetitionPenalty, Seed = p.GetValue(Seed) }
            : baseSampling with { Temperature = t ?? baseSampling.Temperature };
        s = s with
        {
            TopK = p.GetValue(TopK) ?? s.TopK,
            TopP = p.GetValue(TopP) ?? s.TopP,
            MinP = p.GetValue(MinP) ?? s.MinP,
            RepetitionPenalty = p.GetValue(RepetitionPenalty) ?? s.RepetitionPenalty,
        };
        try
        {
            s.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new UsageException($"--{e.ParamName!.Replace('_', '-')}: {e.Message.Split(" (Parameter")[0]}");
        }
        int max = p.GetValue(MaxTokens);
        if (max < 0) throw new UsageException($"--max-tokens must be >= 0, got {max}");
        var stops = p.GetValue(Stop) ?? [];
        if (stops.Any(string.IsNullOrEmpty)) throw new UsageException("--stop: a stop string must not be empty");
        return new GenerationOptions { Sampling = s, MaxNewTokens = max, StopStrings = stops, IgnoreEos = p.GetValue(IgnoreEos) };
    }

    public Qwen2Model Load(ParseResult p, string model)
    {
        return Qwen2Model.Load(model, new ModelOptions
        {
            Threads = CommonOptions.AtLeast1(p.GetValue(Threads), "--threads"),
            Quantize = CommonOptions.ParseQuantize(p.GetValue(Quantize)),
        });
    }

    public SessionOptions Session(ParseResult p, bool useCache)
    {
        return new SessionOptions { UseCache = useCache, CacheCapacity = CommonOptions.AtLeast1(p.GetValue(Context), "--context") };
    }
}
