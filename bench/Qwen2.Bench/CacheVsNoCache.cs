using BenchmarkDotNet.Attributes;
using Qwen2.Native;

namespace Qwen2.Bench;

/// <summary>
/// The original design's comparison: prefill, then decode steps with the KV cache against recomputing the whole
/// sequence without it.
/// </summary>
[MemoryDiagnoser]
public class CacheVsNoCache
{
    private Qwen2Model _model = null!;
    private PastKeyValues _cache = null!;
    private int[] _prompt = null!;
    private float[] _logits = null!;
    private int[] _withNext = null!;

    /// <summary>Prompt length in tokens.</summary>
    [Params(50)]
    public int PromptTokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string dir = Environment.GetEnvironmentVariable("QWEN2_MODEL") is { Length: > 0 } m ? m : ModelLocator.TinyFixture();
        _model = Qwen2Model.Load(dir);
        var rng = new Random(1);
        _prompt = Enumerable.Range(0, PromptTokens).Select(_ => rng.Next(_model.Config.VocabSize)).ToArray();
        // A sliding cache of the prompt's length never fills, so every measured step attends over the same number of keys.
        _cache = _model.CreateCache(PromptTokens, new CacheOptions(CacheOverflow.SlidingWindow));
        _model.ForwardInto(_prompt, _cache, new float[_model.Config.VocabSize], LogitsSelection.Last);
        _withNext = [.. _prompt, _prompt[0]];
        _logits = new float[_model.Config.VocabSize];
    }

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    /// <summary>The prompt through one forward call, no cache.</summary>
    [Benchmark]
    public void Prefill() => _model.ForwardInto(_prompt, null, _logits, LogitsSelection.Last);

    /// <summary>The next token without a cache: the whole sequence recomputed.</summary>
    [Benchmark(Baseline = true)]
    public void DecodeStepNoCache() => _model.ForwardInto(_withNext, null, _logits, LogitsSelection.Last);

    /// <summary>The next token with the cache: one token over the cached prompt.</summary>
    [Benchmark]
    public void DecodeStepWithCache() => _model.ForwardInto(_prompt.AsSpan(0, 1), _cache, _logits, LogitsSelection.Last);
}

internal static class ModelLocator
{
    /// <summary>Finds tests/fixtures/models/tiny-bf16 above the running binary.</summary>
    public static string TinyFixture()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "fixtures", "models", "tiny-bf16");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("set QWEN2_MODEL to a checkpoint directory (tests/fixtures/models/tiny-bf16 was not found above " + AppContext.BaseDirectory + ")");
    }
}
