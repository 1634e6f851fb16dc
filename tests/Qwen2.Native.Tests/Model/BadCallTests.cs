using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>Bad calls are refused before anything changes: the cache's position, count and contents stay as they were.</summary>
public sealed class BadCallTests
{
    /// <summary>Everything a cache holds, per layer.</summary>
    private static (int Position, int Count, float[] Keys, float[] Values, int[] Positions)[] Snapshot(PastKeyValues cache) =>
        cache.Select(l => (l.Position, l.Count, l.Held.Keys.ToArray(), l.Held.Values.ToArray(), l.Held.Positions.ToArray())).ToArray();

    private static void AssertUnchanged((int, int, float[], float[], int[])[] before, PastKeyValues cache)
    {
        var after = Snapshot(cache);
        Assert.Equal(before.Length, after.Length);
        for (int i = 0; i < before.Length; i++)
        {
            Assert.Equal(before[i].Item1, after[i].Position);
            Assert.Equal(before[i].Item2, after[i].Count);
            Assert.Equal(before[i].Item3, after[i].Keys);
            Assert.Equal(before[i].Item4, after[i].Values);
            Assert.Equal(before[i].Item5, after[i].Positions);
        }
    }

    [Fact]
    public void FailedForwardCalls_LeaveTheCacheAsItWas_AndTheSequenceGoesOnAsIfTheyNeverHappened()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"), new ModelOptions { Threads = 1 });
        var c = model.Config;
        var cache = model.CreateCache(8);
        model.Forward([1, 2, 3, 4, 5], cache, useCache: true);
        var before = Snapshot(cache);
        var logits = new float[c.VocabSize];

        var calls = new (string Name, Action Call, Type Error)[]
        {
            ("negative id", () => model.ForwardInto([6, -1], cache, logits), typeof(ArgumentOutOfRangeException)),
            ("id = vocab", () => model.ForwardInto([c.VocabSize], cache, logits), typeof(ArgumentOutOfRangeException)),
            ("id = int.MinValue", () => model.Forward([int.MinValue], cache, useCache: true), typeof(ArgumentOutOfRangeException)),
            ("empty", () => model.ForwardInto([], cache, logits), typeof(ArgumentException)),
            ("empty, allocating", () => model.Forward([], cache, useCache: true), typeof(ArgumentException)),
            ("over capacity", () => model.ForwardInto([6, 7, 8, 9], cache, logits), typeof(CacheFullException)),
            ("over capacity, allocating", () => model.Forward([6, 7, 8, 9], cache, useCache: true), typeof(CacheFullException)),
            ("logits too small", () => model.ForwardInto([6], cache, logits.AsSpan(1)), typeof(ArgumentException)),
            ("all rows into one row", () => model.ForwardInto([6, 7], cache, logits, LogitsSelection.All), typeof(ArgumentException)),
            ("cache without useCache", () => model.Forward([6], cache, useCache: false), typeof(ArgumentException)),
        };
        foreach (var (name, call, error) in calls)
        {
            var e = Record.Exception(call);
            Assert.True(e is not null && e.GetType() == error, $"{name}: {e?.GetType().Name ?? "no exception"}, expected {error.Name}");
            Assert.False(string.IsNullOrWhiteSpace(e!.Message));
            AssertUnchanged(before, cache);
        }

        // the next token gives what it gives after the same prefix without any failed call
        var fresh = model.CreateCache(8);
        model.Forward([1, 2, 3, 4, 5], fresh, useCache: true);
        var expected = model.Forward([6], fresh, useCache: true).Logits[0].ToArray();
        Assert.Equal(expected, model.Forward([6], cache, useCache: true).Logits[0].ToArray());
    }

    [Fact]
    public void ACacheFromAnotherModel_IsRefused_AndLeftUnchanged()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"), new ModelOptions { Threads = 1 });
        var c = model.Config;
        var logits = new float[c.VocabSize];
        var foreign = new[]
        {
            ("more layers", PastKeyValues.CreateRing(c.NumHiddenLayers + 1, 8, c.NumKeyValueHeads, c.HeadDim)),
            ("fewer layers", PastKeyValues.CreateRing(c.NumHiddenLayers - 1, 8, c.NumKeyValueHeads, c.HeadDim)),
            ("other kv heads", PastKeyValues.CreateRing(c.NumHiddenLayers, 8, c.NumKeyValueHeads * 2, c.HeadDim)),
            ("other head dim", PastKeyValues.CreateRing(c.NumHiddenLayers, 8, c.NumKeyValueHeads, c.HeadDim / 2)),
        };
        foreach (var (name, cache) in foreign)
        {
            // give it contents of its own, as a cache used by the other model would have
            int row = cache[0].KvHeads * cache[0].HeadDim;
            foreach (var layer in cache) layer.Append(Enumerable.Range(0, 2 * row).Select(i => (float)i).ToArray(), new float[2 * row], 2);
            var before = Snapshot(cache);
            var e = Assert.Throws<ArgumentException>(() => model.ForwardInto([1], cache, logits));
            Assert.Contains("another model", e.Message, StringComparison.Ordinal);
            AssertUnchanged(before, cache);
            Assert.True(cache.Position == 2, name);
        }

        // layers of one cache that disagree on the position (one was appended to behind the model's back)
        var skewed = model.CreateCache(8);
        model.Forward([1, 2], skewed, useCache: true);
        int r = c.NumKeyValueHeads * c.HeadDim;
        skewed[1].Append(new float[r], new float[r], 1);
        var skewedBefore = Snapshot(skewed);
        Assert.Contains("position", Assert.Throws<ArgumentException>(() => model.ForwardInto([3], skewed, logits)).Message, StringComparison.Ordinal);
        AssertUnchanged(skewedBefore, skewed);
    }

    [Fact]
    public void FailedSessionCalls_LeaveTheSessionAndItsCacheAsTheyWere()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 1 });
        var session = new InferenceSession(model, new SessionOptions { CacheCapacity = 16 });
        var greedy = new GenerationOptions { MaxNewTokens = 2, IgnoreEos = true };

        Assert.Throws<InvalidOperationException>(() => session.Evaluate()); // nothing to run
        var first = session.Generate(golden.Tokens[..6], greedy).ToArray();
        var tokens = session.Tokens.ToArray();
        var before = Snapshot(session.Cache!);
        int processed = session.ProcessedTokens;

        void Unchanged()
        {
            Assert.Equal(tokens, session.Tokens);
            Assert.Equal(processed, session.ProcessedTokens);
            AssertUnchanged(before, session.Cache!);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => session.Append([1, -5]));
        Unchanged();
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Append([model.Config.VocabSize]));
        Unchanged();
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Generate([2, 512, 3], greedy));
        Unchanged();
        Assert.Throws<CacheFullException>(() => session.Generate(Enumerable.Repeat(7, 9).ToArray(), greedy)); // 7 held + 1 pending + 9 > 16
        Unchanged();
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Generate([1], greedy with { MaxNewTokens = -1 }));
        Unchanged();

        // tokens appended beyond the capacity wait; running them is refused and the cache keeps what it had
        session.Append(Enumerable.Repeat(7, 9).ToArray()); // 7 held + 10 pending > 16
        Assert.Throws<CacheFullException>(() => session.Evaluate());
        Assert.Equal(processed, session.ProcessedTokens);
        AssertUnchanged(before, session.Cache!);

        // after the model is disposed the session is refused at its next forward call, its cache untouched
        session.Reset();
        session.Append(golden.Tokens[..6]);
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => session.Evaluate());
        Assert.Equal(0, session.ProcessedTokens);
        Assert.Equal(0, session.Cache!.Count);
        Assert.Equal(2, first.Length);
    }
}
