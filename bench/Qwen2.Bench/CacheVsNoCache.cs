using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Qwen2.Kernels;
using Qwen2.Native;

namespace Qwen2.Bench;

/// <summary>
/// The original design's comparison on a Qwen2-0.5B-shaped BF16 checkpoint (see <see cref="BenchCheckpoint"/>): a
/// 50-token prefill; decode step 1 and step 2 (with the cache: one token at position 50, then 51; without: the whole
/// 51, then 52 tokens recomputed); and 50 greedy decode steps in total. Each category's baseline is the no-cache row.
/// </summary>
/// <remarks>
/// Every run decodes the same precomputed greedy continuation, so both columns compute the same logits. Cached steps
/// first rewind the cache to the length the step needs (an O(1) bookkeeping change, not a recomputation).
/// </remarks>
[MemoryDiagnoser]
[CategoriesColumn]
[WarmupCount(3), IterationCount(10)] // with the per-method job of the 50-step rows, the suite takes a few minutes on 0.5B
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class CacheVsNoCache
{
    /// <summary>Prompt length in tokens.</summary>
    public const int PromptTokens = 50;

    /// <summary>Decode steps in the total.</summary>
    public const int Steps = 50;

    private Qwen2Model _model = null!;
    private PastKeyValues _cache = null!;
    private int[] _sequence = null!; // the prompt, then the greedy continuation
    private float[] _logits = null!;

    /// <summary>Loads the checkpoint, computes the greedy continuation, and leaves the cache holding 51 tokens.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _model = Qwen2Model.Load(BenchCheckpoint.Resolve());
        int vocab = _model.Config.VocabSize;
        _logits = new float[vocab];
        _sequence = new int[PromptTokens + Steps];
        for (int i = 0; i < PromptTokens; i++) _sequence[i] = (int)((i * 2654435761L + 17) % vocab);
        _cache = _model.CreateCache(PromptTokens + Steps);
        _model.ForwardInto(_sequence.AsSpan(0, PromptTokens), _cache, _logits);
        for (int i = PromptTokens; i < _sequence.Length; i++)
        {
            _sequence[i] = Activations.ArgMax(_logits);
            _model.ForwardInto(_sequence.AsSpan(i, 1), _cache, _logits);
        }
        CacheAt(PromptTokens + 1);
    }

    /// <summary>Releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    /// <summary>Brings the cache to <paramref name="count"/> tokens of the sequence: rewinds, or appends what is missing.</summary>
    private void CacheAt(int count)
    {
        if (_cache.Count > count) _cache.Rewind(_cache.Count - count);
        else if (_cache.Count < count) _model.ForwardInto(_sequence.AsSpan(_cache.Count, count - _cache.Count), _cache, _logits);
    }

    /// <summary>The 50-token prompt in one forward call, no cache kept.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("1 prefill, 50 tokens")]
    public void PrefillNoCache() => _model.ForwardInto(_sequence.AsSpan(0, PromptTokens), null, _logits);

    /// <summary>The 50-token prompt in one forward call, writing its keys and values into an emptied cache.</summary>
    [Benchmark, BenchmarkCategory("1 prefill, 50 tokens")]
    public void PrefillWithCache()
    {
        _cache.Reset();
        _model.ForwardInto(_sequence.AsSpan(0, PromptTokens), _cache, _logits);
    }

    /// <summary>Decode step 1 without the cache: 51 tokens recomputed.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("2 decode step 1")]
    public void Step1NoCache() => _model.ForwardInto(_sequence.AsSpan(0, PromptTokens + 1), null, _logits);

    /// <summary>Decode step 1 with the cache: one token at position 50 over 50 cached ones.</summary>
    [Benchmark, BenchmarkCategory("2 decode step 1")]
    public void Step1WithCache()
    {
        CacheAt(PromptTokens);
        _model.ForwardInto(_sequence.AsSpan(PromptTokens, 1), _cache, _logits);
    }

    /// <summary>Decode step 2 without the cache: 52 tokens recomputed.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("3 decode step 2")]
    public void Step2NoCache() => _model.ForwardInto(_sequence.AsSpan(0, PromptTokens + 2), null, _logits);

    /// <summary>Decode step 2 with the cache: one token at position 51 over 51 cached ones.</summary>
    [Benchmark, BenchmarkCategory("3 decode step 2")]
    public void Step2WithCache()
    {
        CacheAt(PromptTokens + 1);
        _model.ForwardInto(_sequence.AsSpan(PromptTokens + 1, 1), _cache, _logits);
    }

    /// <summary>50 decode steps without the cache: 51, 52, ..., 100 tokens recomputed (about 30 s on 0.5B, hence its own short job).</summary>
    [Benchmark(Baseline = true), BenchmarkCategory("4 decode, 50 steps")]
    [WarmupCount(1), IterationCount(3), InvocationCount(1)]
    public void Decode50NoCache()
    {
        for (int n = PromptTokens + 1; n <= PromptTokens + Steps; n++) _model.ForwardInto(_sequence.AsSpan(0, n), null, _logits);
    }

    /// <summary>50 decode steps with the cache, from the 50-token prompt.</summary>
    [Benchmark, BenchmarkCategory("4 decode, 50 steps")]
    [WarmupCount(1), IterationCount(3), InvocationCount(1)]
    public void Decode50WithCache()
    {
        CacheAt(PromptTokens);
        for (int i = PromptTokens; i < PromptTokens + Steps; i++) _model.ForwardInto(_sequence.AsSpan(i, 1), _cache, _logits);
    }
}
