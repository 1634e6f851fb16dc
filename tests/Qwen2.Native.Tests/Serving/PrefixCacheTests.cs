using Qwen2.Native.Generation;
using Qwen2.Native.Serving;

namespace Qwen2.Native.Tests;

/// <summary>
/// Automatic prefix caching: full blocks kept after a sequence leaves give a later sequence with the same prefix the
/// very logits a cold run computes, are evicted least recently used when the pool needs room, and never hand out a
/// block whose tokens or parents differ.
/// </summary>
public class PrefixCacheTests
{
    private static Qwen2Model Load() => Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 2 });

    private static int[] Bits(ReadOnlySpan<float> logits) => logits.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    private static float[] Last(Qwen2Model model, PastKeyValues sequence, int[] ids) =>
        model.ForwardBatch([new BatchInput(ids, sequence)])[0].Last.ToArray();

    [Fact]
    public void CachedPrefixGivesBitIdenticalLogitsToAColdRun()
    {
        using var model = Load();
        var cache = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 });
        int[] first = Enumerable.Range(30, 23).ToArray();
        var a = cache.Join();
        Last(model, a, first);
        cache.Publish(a, first);
        cache.Leave(a);
        Assert.Equal(0, cache.Pool.BlocksInUse);
        Assert.Equal(5, cache.Pool.BlocksCached); // 23 tokens: 5 full blocks of 4

        int[] second = [.. first[..21], 300, 301, 302];
        var warm = cache.Join(second.AsSpan(0, second.Length - 1), out int cached);
        Assert.Equal(20, cached); // the 5 blocks; the 21st token starts a block the first sequence never filled with these tokens
        Assert.Equal(0, cache.Pool.BlocksCached);
        var warmLogits = Last(model, warm, second[cached..]);

        // A cold run in a cache that never cached anything: the whole second prompt in one step.
        var fresh = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 });
        Assert.Equal(Bits(Last(model, fresh.Join(), second)), Bits(warmLogits));
    }

    [Fact]
    public void ADifferentPrefixOrAReusedParentIsAMiss()
    {
        using var model = Load();
        var cache = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4, MaxBytes = 6 * BlockBytes(model, 4) });
        int[] tokens = Enumerable.Range(1, 12).ToArray();
        var a = cache.Join();
        Last(model, a, tokens);
        cache.Publish(a, tokens);
        cache.Leave(a);
        // The second block's tokens after another first block: not the cached second block.
        int[] other = [90, 91, 92, 93, .. tokens[4..]];
        cache.Leave(Probe(cache, other, out int hit));
        Assert.Equal(0, hit);

        // Fill the pool so the cached blocks are evicted (least recently used first), then look again.
        var filler = cache.Join();
        Last(model, filler, Enumerable.Range(200, 6 * 4).ToArray());
        Assert.Equal(0, cache.Pool.BlocksCached);
        cache.Leave(filler);
        cache.Leave(Probe(cache, tokens, out hit));
        Assert.Equal(0, hit);
    }

    private static PastKeyValues Probe(BatchingKvCache cache, int[] tokens, out int cached) => cache.Join(tokens, out cached);

    private static long BlockBytes(Qwen2Model model, int blockSize) =>
        2L * model.Config.NumHiddenLayers * blockSize * model.Config.NumKeyValueHeads * model.Config.HeadDim * sizeof(float);

    [Fact]
    public void EvictionTakesTheLeastRecentlyUsedBlocksFirst()
    {
        using var model = Load();
        var cache = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4, MaxBytes = 4 * BlockBytes(model, 4) });
        int[] older = Enumerable.Range(1, 8).ToArray(), newer = Enumerable.Range(50, 8).ToArray();
        foreach (var t in new[] { older, newer })
        {
            var s = cache.Join();
            Last(model, s, t);
            cache.Publish(s, t);
            cache.Leave(s);
        }
        Assert.Equal(4, cache.Pool.BlocksCached);
        // Two new blocks: the older prefix's blocks go.
        var x = cache.Join();
        Last(model, x, Enumerable.Range(100, 8).ToArray());
        cache.Leave(x);
        cache.Leave(Probe(cache, newer, out int newerHit));
        Assert.Equal(8, newerHit);
        cache.Leave(Probe(cache, older, out int olderHit));
        Assert.Equal(0, olderHit);
    }

    [Fact]
    public void GeneratorReusesAFinishedRequestsPromptWithTheSameTokens()
    {
        using var model = Load();
        var sampled = new GenerationOptions { MaxNewTokens = 10, IgnoreEos = true, Sampling = new SamplingOptions { Temperature = 0.9, TopK = 40, Seed = 9 } };
        int[] system = Enumerable.Range(10, 37).ToArray();
        int[] second = [.. system, 400, 401];
        using var generator = new BatchGenerator(model, new BatchGeneratorOptions { CachePrefixes = true, Cache = new BatchingKvCacheOptions { BlockSize = 4 } });
        var r1 = generator.Submit(system, sampled);
        generator.RunToCompletion();
        var r2 = generator.Submit(second, sampled);
        generator.RunToCompletion();
        Assert.Equal(0, r1.SharedPromptTokens);
        // The first request's prompt and the generated tokens it ran: the second shares the 37 prompt tokens' 9 full blocks.
        Assert.Equal(36, r2.SharedPromptTokens);
        Assert.Equal(new InferenceSession(model).Generate(second, sampled).ToArray(), r2.Generated);
        Assert.Equal(0, generator.Cache.Pool.BlocksInUse);
        Assert.True(generator.Cache.Pool.BlocksCached > 0);

        // Without caching, nothing is reused and the tokens are the same.
        using var plain = new BatchGenerator(model, new BatchGeneratorOptions { Cache = new BatchingKvCacheOptions { BlockSize = 4 } });
        plain.Submit(system, sampled);
        plain.RunToCompletion();
        var p2 = plain.Submit(second, sampled);
        plain.RunToCompletion();
        Assert.Equal(0, p2.SharedPromptTokens);
        Assert.Equal(p2.Generated, r2.Generated);
    }

    [Fact]
    public void UnderMemoryPressureEveryRequestStillGetsItsTokens()
    {
        using var model = Load();
        var golden = Fixtures.Golden("tiny-bf16");
        using var generator = new BatchGenerator(model, new BatchGeneratorOptions
        {
            CachePrefixes = true, MaxBatchSize = 4,
            Cache = new BatchingKvCacheOptions { BlockSize = 4, MaxBytes = 24 * BlockBytes(model, 4) },
        });
        var greedy = new GenerationOptions { MaxNewTokens = 12, IgnoreEos = true };
        var prompts = Enumerable.Range(0, 8).Select(i => i % 2 == 0 ? golden.Tokens : [.. golden.Tokens[..8], 100 + i, 200 + i]).ToArray();
        var requests = new List<GenerationRequest>();
        foreach (var p in prompts)
        {
            requests.Add(generator.Submit(p, greedy));
            generator.Step();
        }
        generator.RunToCompletion();
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(new InferenceSession(model).Generate(prompts[i], greedy).ToArray(), requests[i].Generated);
        Assert.True(requests.Skip(2).Any(r => r.SharedPromptTokens > 0), "no request reused a cached or running prefix");
        Assert.Equal(0, generator.Cache.Pool.BlocksInUse);
        Assert.True(generator.Cache.Pool.BlocksCached <= generator.Cache.Pool.MaxBlocks);
    }
}
