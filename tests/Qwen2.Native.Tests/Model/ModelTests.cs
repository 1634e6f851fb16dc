namespace Qwen2.Native.Tests;

/// <summary>Parity with the independent references, and the Hugging Face-style cache interface.</summary>
public class ModelTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> AllFixtures => new() { "tiny-f32", "tiny-bf16", "untied-f16-mha", "headdim-bf16", "sliding-f32", "sharded-bf16" };

    internal static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float worst = 0;
        for (int i = 0; i < a.Length; i++) worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
        return worst;
    }

    [Fact]
    public void DecodeReadsTheWholeTiedEmbeddingButOneRowOfAnUntiedOne()
    {
        using var tied = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        Assert.Equal(tied.WeightBytes, tied.DecodeBytesPerToken);
        using var untied = Qwen2Model.Load(Fixtures.Model("untied-f16-mha")); // F16: two bytes an element
        long embedRow = 2L * untied.Config.HiddenSize;
        Assert.Equal(untied.WeightBytes - untied.Config.VocabSize * embedRow + embedRow, untied.DecodeBytesPerToken);
    }

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public void FullSequenceMatchesReferenceAtEveryPosition(string name)
    {
        var golden = Fixtures.Golden(name);
        using var model = Qwen2Model.Load(Fixtures.Model(name));
        var logits = model.Forward(golden.Tokens);
        Assert.Equal(golden.Tokens.Length, logits.Rows);
        for (int p = 0; p < logits.Rows; p++)
        {
            float d = MaxAbsDiff(logits[p], golden.Logits[p]);
            Assert.True(d <= Tolerance, $"{name}: position {p} differs from the reference by {d}");
        }
    }

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public void CachedGreedyDecodingReproducesReferenceTokens(string name)
    {
        var golden = Fixtures.Golden(name);
        using var model = Qwen2Model.Load(Fixtures.Model(name));
        var (logits, cache) = model.Forward(golden.Tokens, useCache: true, logits: LogitsSelection.Last);
        Assert.NotNull(cache);
        int next = logits.ArgMax(0);
        for (int i = 0; i < golden.Greedy.Length; i++)
        {
            Assert.Equal(golden.Greedy[i], next);
            float d = MaxAbsDiff(logits.Last, golden.GreedyLogits[i]);
            Assert.True(d <= Tolerance, $"{name}: greedy step {i} logits differ by {d}");
            (logits, cache) = model.Forward([next], cache, useCache: true, logits: LogitsSelection.Last);
            next = logits.ArgMax(0);
        }
        Assert.Equal(golden.Tokens.Length + golden.Greedy.Length, cache!.Position);
    }

    [Fact]
    public void UncachedGreedyDecodingReproducesReferenceTokens()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var seq = golden.Tokens.ToList();
        foreach (int expected in golden.Greedy)
        {
            int next = model.Forward(seq.ToArray(), logits: LogitsSelection.Last).Logits.ArgMax(0);
            Assert.Equal(expected, next);
            seq.Add(next);
        }
    }

    [Fact]
    public void LogitsAreBitIdenticalForAnyThreadCount()
    {
        var golden = Fixtures.Golden("untied-f16-mha");
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3, 4 })
        {
            using var model = Qwen2Model.Load(Fixtures.Model("untied-f16-mha"), new ModelOptions { Threads = threads });
            var values = model.Forward(golden.Tokens).Values.ToArray();
            if (first is null) first = values;
            else Assert.Equal(first, values); // exact, element by element
        }
    }

    // --- The four tests of the original PyTorch design ---

    [Fact]
    public void CacheInterface()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        int[] ids = [1, 17, 42];
        var (logits, cache) = model.Forward(ids, useCache: true);
        Assert.NotNull(cache);
        Assert.Equal(model.Config.NumHiddenLayers, cache!.Layers);
        Assert.Equal(3, cache.Position);
        Assert.Equal(3, cache.Count);
        Assert.All(cache, layer => Assert.Equal(3, layer.Count));
        Assert.Equal(3, logits.Rows);
        Assert.Equal(model.Config.VocabSize, logits.VocabSize);

        var (next, same) = model.Forward([99], cache, useCache: true);
        Assert.Same(cache, same); // appended in place, returned as HF returns the updated cache
        Assert.Equal(1, next.Rows);
        Assert.Equal(4, cache.Position);
    }

    [Fact]
    public void IncrementalGeneration()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        var golden = Fixtures.Golden("tiny-f32");
        PastKeyValues? cache = null;
        var generated = new List<int>();
        int[] input = golden.Tokens;
        for (int step = 0; step < 5; step++)
        {
            var output = model.Forward(input, cache, useCache: true, LogitsSelection.Last);
            cache = output.PastKeyValues;
            int token = output.Logits.ArgMax(0);
            generated.Add(token);
            input = [token];
            Assert.Equal(golden.Tokens.Length + step, cache!.Position);
        }
        Assert.Equal(golden.Greedy.Take(5), generated);
    }

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public void CacheConsistency(string name)
    {
        var golden = Fixtures.Golden(name);
        using var model = Qwen2Model.Load(Fixtures.Model(name));
        var full = model.Forward(golden.Tokens);
        var cache = model.CreateCache(golden.Tokens.Length);
        // the first 5 tokens as one block, then one token at a time
        var first = model.Forward(golden.Tokens.AsSpan(0, 5), cache, useCache: true).Logits;
        for (int p = 0; p < 5; p++) Assert.True(MaxAbsDiff(first[p], full[p]) <= Tolerance);
        for (int p = 5; p < golden.Tokens.Length; p++)
        {
            var step = model.Forward(golden.Tokens.AsSpan(p, 1), cache, useCache: true).Logits;
            float d = MaxAbsDiff(step[0], full[p]);
            Assert.True(d <= Tolerance, $"{name}: cached position {p} differs from the uncached pass by {d}");
        }
    }

    [Fact]
    public void BackwardCompatibilityWithoutCache()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        int[] ids = [1, 17, 42];
        Logits plain = model.Forward(ids);
        var (logits, cache) = model.Forward(ids, useCache: false);
        Assert.Null(cache);
        Assert.Equal(plain.Values.ToArray(), logits.Values.ToArray());
        // same input, same output: a call without a cache keeps no state
        Assert.Equal(plain.Values.ToArray(), model.Forward(ids).Values.ToArray());
    }

    // --- further cache behaviour ---

    [Fact]
    public void LastSelectionEqualsLastRowOfAll()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        int[] ids = [5, 6, 7, 8];
        var all = model.Forward(ids);
        var last = model.Forward(ids, logits: LogitsSelection.Last).Logits;
        Assert.Equal(1, last.Rows);
        Assert.Equal(all[3].ToArray(), last[0].ToArray());
    }

    [Fact]
    public void RopePositionComesFromTheCache()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        var fresh = model.Forward([42], useCache: true).Logits;
        var cache = model.CreateCache(16);
        model.Forward([1, 2, 3, 4, 5], cache, useCache: true);
        var later = model.Forward([42], cache, useCache: true).Logits;
        var full = model.Forward([1, 2, 3, 4, 5, 42]);
        Assert.True(MaxAbsDiff(later[0], full[5]) <= Tolerance);
        Assert.True(MaxAbsDiff(fresh[0], later[0]) > 1e-2f, "a token at position 5 must not score as at position 0");
    }

    [Fact]
    public void RewindThenReplayGivesTheSameLogits()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("sliding-f32"));
        int[] ids = Fixtures.Golden("sliding-f32").Tokens;
        var cache = model.CreateCache(32);
        var original = model.Forward(ids, cache, useCache: true).Logits;
        cache.Rewind(4);
        Assert.Equal(ids.Length - 4, cache.Position);
        var replay = model.Forward(ids.AsSpan(ids.Length - 4), cache, useCache: true).Logits;
        for (int i = 0; i < 4; i++) Assert.True(MaxAbsDiff(replay[i], original[ids.Length - 4 + i]) <= Tolerance);
        cache.Reset();
        Assert.Equal(0, cache.Position);
        Assert.True(MaxAbsDiff(model.Forward(ids.AsSpan(0, 1), cache, useCache: true).Logits[0], original[0]) <= Tolerance);
    }

    [Fact]
    public void FullCacheThrowsAndStaysUnchanged()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        var cache = model.CreateCache(4);
        model.Forward([1, 2, 3], cache, useCache: true);
        var before = model.Forward([4], cache, useCache: true).Logits[0].ToArray();
        cache.Rewind(1);
        var e = Assert.Throws<CacheFullException>(() => model.Forward([4, 5], cache, useCache: true));
        Assert.Contains("4 tokens", e.Message);
        Assert.Equal(3, cache.Position);
        Assert.Equal(3, cache.Count);
        Assert.Equal(before, model.Forward([4], cache, useCache: true).Logits[0].ToArray());
    }

    [Fact]
    public void SlidingCacheGivesTheSameLogitsTokenByTokenAsInOneBlock()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        int[] ids = Fixtures.Golden("tiny-f32").Tokens;
        var options = new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 2);
        var block = model.Forward(ids, model.CreateCache(6, options), useCache: true).Logits;
        var stepCache = model.CreateCache(6, options);
        for (int p = 0; p < ids.Length; p++)
        {
            var step = model.Forward(ids.AsSpan(p, 1), stepCache, useCache: true).Logits;
            Assert.True(MaxAbsDiff(step[0], block[p]) <= Tolerance, $"position {p}");
        }
        Assert.Equal(ids.Length, stepCache.Position);
        Assert.Equal(6, stepCache.Count);
        // within the window the ring changes nothing; past it, the evicted keys change the scores
        var full = model.Forward(ids);
        for (int p = 0; p < 6; p++) Assert.True(MaxAbsDiff(block[p], full[p]) <= Tolerance);
        Assert.True(MaxAbsDiff(block[ids.Length - 1], full[ids.Length - 1]) > 1e-3f);
    }

    [Fact]
    public void BadCallsGetClearErrors()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => model.Forward(ReadOnlySpan<int>.Empty)).Message);
        Assert.Contains("index 1 is 512", Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward([1, 512])).Message);
        Assert.Contains("is -1", Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward([-1])).Message);
        var cache = model.CreateCache(8);
        Assert.Contains("useCache", Assert.Throws<ArgumentException>(() => model.Forward([1], cache, useCache: false)).Message);

        using var other = Qwen2Model.Load(Fixtures.Model("untied-f16-mha"));
        var foreign = other.CreateCache(8);
        Assert.Contains("another model", Assert.Throws<ArgumentException>(() => model.Forward([1], foreign, useCache: true)).Message);
        Assert.Equal(0, foreign.Position);
    }

    [Fact]
    public void ForwardAfterDisposeThrows()
    {
        var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.Forward([1]));
    }
}
