namespace Qwen2.Native.Tests;

/// <summary>The ring-buffer cache on its own: capacity, overflow, sinks, rewind.</summary>
public class CacheTests
{
    private const int KvHeads = 2, HeadDim = 4, Row = KvHeads * HeadDim;

    /// <summary>Keys and values whose every element encodes the token's position, so tests can see what a slot holds.</summary>
    private static (float[] K, float[] V) Tokens(int firstPosition, int count)
    {
        var k = new float[count * Row];
        var v = new float[count * Row];
        for (int t = 0; t < count; t++)
            for (int i = 0; i < Row; i++)
            {
                k[t * Row + i] = firstPosition + t;
                v[t * Row + i] = -(firstPosition + t);
            }
        return (k, v);
    }

    private static void Append(RingKvCache cache, int count)
    {
        var (k, v) = Tokens(cache.Position, count);
        cache.Append(k, v, count);
    }

    /// <summary>The positions a cache holds, checked against the keys stored beside them.</summary>
    private static int[] HeldPositions(RingKvCache cache)
    {
        var held = cache.Held;
        var list = new List<int>();
        for (int s = 0; s < held.Count; s++)
        {
            if (held.Positions[s] == int.MaxValue) continue; // rewound slot
            Assert.Equal(held.Positions[s], held.Keys[s * Row]);
            Assert.Equal(-held.Positions[s], held.Values[s * Row + Row - 1]);
            list.Add(held.Positions[s]);
        }
        list.Sort();
        Assert.Equal(cache.Count, list.Count);
        return list.ToArray();
    }

    [Fact]
    public void FillsExactlyToCapacity()
    {
        var cache = new RingKvCache(5, KvHeads, HeadDim);
        Append(cache, 3);
        Append(cache, 2);
        Assert.Equal(5, cache.Count);
        Assert.Equal(5, cache.Position);
        Assert.Equal([0, 1, 2, 3, 4], HeldPositions(cache));
    }

    [Fact]
    public void CapacityPlusOneThrowsAndChangesNothing()
    {
        var cache = new RingKvCache(5, KvHeads, HeadDim);
        Append(cache, 5);
        var e = Assert.Throws<CacheFullException>(() => Append(cache, 1));
        Assert.Contains("5 of 5", e.Message);
        Assert.Equal(5, cache.Count);
        Assert.Equal(5, cache.Position);
        Assert.Equal([0, 1, 2, 3, 4], HeldPositions(cache));
    }

    [Fact]
    public void SlidingWindowOverwritesTheOldestAndKeepsAbsolutePositions()
    {
        var cache = new RingKvCache(5, KvHeads, HeadDim, new CacheOptions(CacheOverflow.SlidingWindow));
        Append(cache, 5);
        Append(cache, 1);
        Assert.Equal(6, cache.Position);
        Assert.Equal(5, cache.Count);
        Assert.Equal([1, 2, 3, 4, 5], HeldPositions(cache));
        Append(cache, 3);
        Assert.Equal([4, 5, 6, 7, 8], HeldPositions(cache));
        var mask = cache.Visibility;
        Assert.True(mask.IsVisible(9, 5));
        Assert.False(mask.IsVisible(9, 4)); // with token 9 written, 4 would be gone
    }

    [Fact]
    public void SinkTokensSurviveEviction()
    {
        var cache = new RingKvCache(5, KvHeads, HeadDim, new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 2));
        Append(cache, 7);
        Assert.Equal([0, 1, 4, 5, 6], HeldPositions(cache));
        Append(cache, 1);
        Assert.Equal([0, 1, 5, 6, 7], HeldPositions(cache));
        var mask = cache.Visibility;
        Assert.True(mask.IsVisible(100, 1));
        Assert.False(mask.IsVisible(100, 2 + 50));
    }

    [Fact]
    public void BlockLongerThanTheWindowKeepsItsLastTokens()
    {
        var cache = new RingKvCache(4, KvHeads, HeadDim, new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 1));
        Append(cache, 2);
        Append(cache, 9);
        Assert.Equal(11, cache.Position);
        Assert.Equal([0, 8, 9, 10], HeldPositions(cache));
    }

    [Fact]
    public void RewindAndReset()
    {
        var cache = new RingKvCache(8, KvHeads, HeadDim);
        Append(cache, 6);
        cache.Rewind(2);
        Assert.Equal(4, cache.Position);
        Assert.Equal([0, 1, 2, 3], HeldPositions(cache));
        Append(cache, 3);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], HeldPositions(cache));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Rewind(8));
        cache.Reset();
        Assert.Equal(0, cache.Position);
        Assert.Equal(0, cache.Count);
        Assert.Empty(HeldPositions(cache));
    }

    [Fact]
    public void RewindAfterWrapRefillsTheSameSlots()
    {
        var cache = new RingKvCache(4, KvHeads, HeadDim, new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 1));
        Append(cache, 6);                     // holds 0, 3, 4, 5
        Assert.Equal([0, 3, 4, 5], HeldPositions(cache));
        cache.Rewind(2);                      // forget 4 and 5
        Assert.Equal(4, cache.Position);
        Assert.Equal([0, 3], HeldPositions(cache));
        Append(cache, 2);                     // 4 and 5 again, nothing else evicted
        Assert.Equal([0, 3, 4, 5], HeldPositions(cache));
        Append(cache, 1);
        Assert.Equal([0, 4, 5, 6], HeldPositions(cache));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Rewind(4)); // would reach the sink
    }

    [Fact]
    public void InvalidCreationArgumentsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RingKvCache(0, KvHeads, HeadDim));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RingKvCache(4, KvHeads, HeadDim, new CacheOptions(SinkTokens: 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RingKvCache(4, KvHeads, HeadDim, new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 4)));
    }

    [Fact]
    public void AppendingAllocatesNothing()
    {
        var cache = new RingKvCache(64, KvHeads, HeadDim, new CacheOptions(CacheOverflow.SlidingWindow));
        var (k, v) = Tokens(0, 1);
        cache.Append(k, v, 1);
        AllocationProbe.AssertNoAllocation(() => cache.Append(k, v, 1), clean: 200, limit: 1000, "appends");
    }
}
