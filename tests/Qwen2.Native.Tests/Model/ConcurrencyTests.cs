using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>One model shared by sessions on several threads, and disposing it while they run.</summary>
public sealed class ConcurrencyTests
{
    private static GenerationOptions Options(int session) => new()
    {
        MaxNewTokens = 24,
        IgnoreEos = true,
        Sampling = session % 2 == 0 ? SamplingOptions.Greedy : new SamplingOptions { Temperature = 1.2, TopP = 0.95, Seed = (ulong)(100 + session) },
    };

    private static int[] Prompt(Golden golden, int session) => golden.Tokens.Skip(session).Take(6 + 2 * session).Select(t => (t + 37 * session) % 500).ToArray();

    [Fact]
    public void FourSessionsOnFourThreads_GiveTheTokensOfTheSameSessionsRunOneAfterAnother()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        // two pool threads: concurrent forward calls queue on the pool's lock for every parallel loop
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 2 });
        const int n = 4;
        var expected = Enumerable.Range(0, n).Select(s => new InferenceSession(model).Generate(Prompt(golden, s), Options(s)).ToArray()).ToArray();
        Assert.Equal(expected[0], new InferenceSession(model).Generate(Prompt(golden, 0), Options(0)).ToArray()); // repeatable at all

        var got = new int[n][];
        using var start = new Barrier(n);
        var threads = Enumerable.Range(0, n).Select(s => new Thread(() =>
        {
            var session = new InferenceSession(model);
            start.SignalAndWait();
            got[s] = session.Generate(Prompt(golden, s), Options(s)).ToArray();
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();

        for (int s = 0; s < n; s++) Assert.Equal(expected[s], got[s]);
        Assert.NotEqual(expected[0], expected[2]); // different prompts, different continuations
    }

    /// <summary>A layer cache that parks the forward call in its first Append until released.</summary>
    private sealed class ParkingCache(RingKvCache inner, ManualResetEventSlim? entered, ManualResetEventSlim release) : IKvCache
    {
        public int Position => inner.Position;
        public int Count => inner.Count;
        public int Capacity => inner.Capacity;
        public int KvHeads => inner.KvHeads;
        public int HeadDim => inner.HeadDim;
        public AttentionMask Visibility => inner.Visibility;
        public KvBlock Held => inner.Held;
        public void EnsureRoomFor(int tokens) => inner.EnsureRoomFor(tokens);
        public void Reset() => inner.Reset();
        public void Rewind(int tokens) => inner.Rewind(tokens);

        public void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int tokens)
        {
            if (entered is not null)
            {
                entered.Set();
                release.Wait();
            }
            inner.Append(keys, values, tokens);
        }
    }

    [Fact]
    public void Dispose_WaitsForARunningForwardCall_AndRefusesNewOnes()
    {
        var golden = Fixtures.Golden("tiny-f32");
        var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"), new ModelOptions { Threads = 2 });
        var c = model.Config;
        int[] ids = golden.Tokens;
        var expected = new float[c.VocabSize];
        model.ForwardInto(ids, model.CreateCache(64), expected);

        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var cache = new PastKeyValues(Enumerable.Range(0, c.NumHiddenLayers).Select(i =>
            (IKvCache)new ParkingCache(new RingKvCache(64, c.NumKeyValueHeads, c.HeadDim), i == 0 ? entered : null, release)));
        var logits = new float[c.VocabSize];
        var forward = new Thread(() => model.ForwardInto(ids, cache, logits));
        forward.Start();
        entered.Wait(); // the call is inside layer 0; every later layer and the lm_head still read the mapped weights

        using var disposed = new ManualResetEventSlim();
        var dispose = new Thread(() =>
        {
            model.Dispose();
            disposed.Set();
        });
        dispose.Start();
        // Dispose has begun once a new call is refused (an empty call is otherwise an ArgumentException and costs nothing)
        SpinWait.SpinUntil(() =>
        {
            try { model.ForwardInto([], null, []); }
            catch (ObjectDisposedException) { return true; }
            catch (ArgumentException) { }
            return false;
        });
        Assert.Throws<ObjectDisposedException>(() => model.Forward([1]));
        Assert.False(disposed.IsSet); // it cannot finish: the parked call still counts as in flight

        release.Set();
        forward.Join();
        dispose.Join();
        Assert.True(disposed.IsSet);
        Assert.Equal(expected, logits); // the parked call finished on intact weights
        Assert.Equal(ids.Length, cache.Position);
        Assert.Throws<ObjectDisposedException>(() => model.ForwardInto([1], null, logits));
        model.Dispose(); // again: nothing to do
    }

    [Fact]
    public void DisposingWhileSessionsGenerate_EndsThemWithObjectDisposedException_NeverACrash()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 2 });
        var options = new GenerationOptions { MaxNewTokens = 400, IgnoreEos = true };
        var reference = new InferenceSession(model, new SessionOptions { CacheCapacity = 512 }).Generate(golden.Tokens, options).ToArray();

        const int n = 3;
        using var started = new CountdownEvent(n);
        var got = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var errors = new Exception?[n];
        var threads = Enumerable.Range(0, n).Select(s => new Thread(() =>
        {
            try
            {
                foreach (int t in new InferenceSession(model, new SessionOptions { CacheCapacity = 512 }).Generate(golden.Tokens, options))
                {
                    got[s].Add(t);
                    if (got[s].Count == 3) started.Signal();
                }
            }
            catch (Exception e)
            {
                errors[s] = e;
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        started.Wait();
        model.Dispose();
        foreach (var t in threads) t.Join();

        for (int s = 0; s < n; s++)
        {
            // each either finished before the dispose or was refused at its next step; what it produced is right
            if (errors[s] is { } e) Assert.IsType<ObjectDisposedException>(e);
            else Assert.Equal(reference.Length, got[s].Count);
            Assert.Equal(reference.Take(got[s].Count), got[s]);
        }
    }

    [Fact]
    public void CancellingOneSessionWhileOthersRun_LeavesItsCacheExactAndItCanGoOn()
    {
        var golden = Fixtures.Golden("untied-f16-mha");
        using var model = Qwen2Model.Load(Fixtures.Model("untied-f16-mha"), new ModelOptions { Threads = 2 });
        var greedy = new GenerationOptions { MaxNewTokens = 20, IgnoreEos = true };
        var others = new List<int[]>();
        var other = new Thread(() =>
        {
            for (int i = 0; i < 3; i++) others.Add(new InferenceSession(model).Generate(golden.Tokens, greedy).ToArray());
        });
        other.Start();

        var session = new InferenceSession(model);
        using var cts = new CancellationTokenSource();
        var got = new List<int>();
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (int t in session.Generate(golden.Tokens, greedy, cts.Token))
            {
                got.Add(t);
                if (got.Count == 5) cts.Cancel();
            }
        });
        Assert.Equal(golden.Greedy[..5], got);
        Assert.Equal(golden.Tokens.Length + 4, session.Cache!.Count);
        Assert.Equal(session.ProcessedTokens, session.Cache.Position);
        var rest = session.Generate([], greedy with { MaxNewTokens = 15 }).ToArray();
        Assert.Equal(golden.Greedy[5..], rest);
        other.Join();
        Assert.All(others, o => Assert.Equal(golden.Greedy, o));
        Assert.Equal(3, others.Count);
    }
}
