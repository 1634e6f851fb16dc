using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>Token-level generation: parity with the reference's greedy tokens, cache reuse, stops, cancellation.</summary>
public class GenerationTests
{
    private static GenerationOptions Greedy(int n) => new() { MaxNewTokens = n, IgnoreEos = true };

    [Theory]
    [InlineData("tiny-f32", true)]
    [InlineData("tiny-bf16", true)]
    [InlineData("untied-f16-mha", false)]
    [InlineData("sliding-f32", true)]
    public void GreedyGenerationReproducesTheReference(string name, bool useCache)
    {
        var golden = Fixtures.Golden(name);
        using var model = Qwen2Model.Load(Fixtures.Model(name));
        var session = new InferenceSession(model, new SessionOptions { UseCache = useCache });
        var tokens = session.Generate(golden.Tokens, Greedy(golden.Greedy.Length)).ToArray();
        Assert.Equal(golden.Greedy, tokens);
        var stats = session.LastStats!;
        Assert.Equal(StopReason.MaxTokens, stats.StopReason);
        Assert.Equal(golden.Tokens.Length, stats.PromptTokens);
        Assert.Equal(golden.Greedy.Length, stats.GeneratedTokens);
        Assert.Equal(golden.Greedy.Length - 1, stats.DecodeSteps);
        // The last token waits until the sequence goes on.
        Assert.Equal(golden.Tokens.Length + golden.Greedy.Length - 1, session.ProcessedTokens);
        Assert.Equal(1, session.PendingTokens);
        if (useCache) Assert.Equal(session.ProcessedTokens, session.Cache!.Count);
    }

    [Fact]
    public void ASecondTurnRunsOnlyItsNewTokensAndMatchesAFreshRun()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model);
        var first = session.Generate(golden.Tokens[..6], Greedy(5)).ToArray();
        int[] turn = [7, 300, 411];
        var second = session.Generate(turn, Greedy(8)).ToArray();
        Assert.Equal(1 + turn.Length, session.LastStats!.PromptTokens); // the pending reply token and the new turn, nothing recomputed

        var fresh = new InferenceSession(model, new SessionOptions { UseCache = false });
        var expected = fresh.Generate(golden.Tokens[..6].Concat(first).Concat(turn).ToArray(), Greedy(8)).ToArray();
        Assert.Equal(expected, second);
        Assert.Equal(session.Tokens, fresh.Tokens);
    }

    [Fact]
    public void StopsAtAStopTokenAndReturnsIt()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model);
        int stop = golden.Greedy[4];
        var tokens = session.Generate(golden.Tokens, new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [stop] }).ToArray();
        Assert.Equal(golden.Greedy[..5], tokens);
        Assert.Equal(StopReason.EndOfSequence, session.LastStats!.StopReason);
    }

    [Fact]
    public void ModelEosIdsStopByDefaultAndIgnoreEosGoesOn()
    {
        // tiny-f32 greedily repeats 500 first; a config that calls 287 the eos stops at its first appearance.
        var golden = Fixtures.Golden("tiny-f32");
        using var dir = Fixtures.TempDir();
        foreach (var f in Directory.GetFiles(Fixtures.Model("tiny-f32"))) File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        File.WriteAllText(dir.File("generation_config.json"), """{"eos_token_id": [287, 999999], "do_sample": false}""");
        using var model = Qwen2Model.Load(dir.Path);
        Assert.Equal([287, 999999, 511], new InferenceSession(model).DefaultStopTokenIds);
        var tokens = new InferenceSession(model).Generate(golden.Tokens, new GenerationOptions { MaxNewTokens = 20 }).ToArray();
        Assert.Equal(golden.Greedy[..(Array.IndexOf(golden.Greedy, 287) + 1)], tokens);
        var all = new InferenceSession(model).Generate(golden.Tokens, Greedy(20)).ToArray();
        Assert.Equal(golden.Greedy, all);
    }

    [Fact]
    public void CancellationLeavesExactlyTheProcessedTokensAndGenerationGoesOn()
    {
        var golden = Fixtures.Golden("untied-f16-mha");
        using var model = Qwen2Model.Load(Fixtures.Model("untied-f16-mha"));
        var session = new InferenceSession(model);
        using var cts = new CancellationTokenSource();
        var got = new List<int>();
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (int t in session.Generate(golden.Tokens, Greedy(20), cts.Token))
            {
                got.Add(t);
                if (got.Count == 7) cts.Cancel();
            }
        });
        Assert.Equal(golden.Greedy[..7], got);
        Assert.Equal(StopReason.Cancelled, session.LastStats!.StopReason);
        Assert.Equal(session.ProcessedTokens, session.Cache!.Count);
        Assert.Equal(golden.Tokens.Length + 6, session.Cache.Count);
        var rest = session.Generate([], Greedy(13)).ToArray();
        Assert.Equal(golden.Greedy[7..], rest);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TruncateToKeepsAPrefixAndContinuesAsAFreshSession(bool useCache)
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model, new SessionOptions { UseCache = useCache });
        session.Generate(golden.Tokens, Greedy(6)).ToArray();
        int[] branch = [7, 300, 411];
        session.TruncateTo(9);
        Assert.Equal(golden.Tokens[..9], session.Tokens);
        Assert.Equal(9, session.ProcessedTokens);
        if (useCache) Assert.Equal(9, session.Cache!.Count);
        var got = session.Generate(branch, Greedy(8)).ToArray();
        Assert.Equal(branch.Length, session.LastStats!.PromptTokens); // the kept prefix came from the cache

        var fresh = new InferenceSession(model);
        Assert.Equal(fresh.Generate(golden.Tokens[..9].Concat(branch).ToArray(), Greedy(8)).ToArray(), got);
    }

    [Fact]
    public void TruncateToTheRunTokensRecomputesTheLastOnesLogits()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model);
        session.Generate(golden.Tokens, Greedy(4)).ToArray(); // 12 + 3 run, the 4th pending
        Assert.Equal(15, session.ProcessedTokens);
        session.TruncateTo(15);
        Assert.Equal(0, session.PendingTokens);
        // Nothing is appended, so the 15th token runs again to give the logits the next step needs.
        var next = session.Generate([], Greedy(3)).ToArray();
        Assert.Equal(1, session.LastStats!.PromptTokens);
        Assert.Equal(golden.Greedy[3..6], next);
        var logits = session.Evaluate().ToArray();
        session.TruncateTo(session.ProcessedTokens);
        Assert.Equal(logits, session.Evaluate().ToArray());
    }

    [Fact]
    public void TruncateToRebuildsTheRepetitionPenaltySet()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var penalized = new GenerationOptions { MaxNewTokens = 8, IgnoreEos = true, Sampling = SamplingOptions.Greedy with { RepetitionPenalty = 1.8 } };
        var session = new InferenceSession(model);
        session.Generate(golden.Tokens, penalized).ToArray();
        session.TruncateTo(5);
        var got = session.Generate(golden.Tokens[5..], penalized).ToArray();
        // Tokens generated before the truncation no longer count as seen.
        Assert.Equal(new InferenceSession(model).Generate(golden.Tokens, penalized).ToArray(), got);
    }

    [Fact]
    public void TruncateToAfterASlidingCacheEvictedRunsTheKeptTokensAgain()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var sliding = new SessionOptions { CacheCapacity = 8, CacheOptions = new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 2) };
        var session = new InferenceSession(model, sliding);
        session.Generate(golden.Tokens, Greedy(4)).ToArray();
        Assert.True(session.Cache!.Position > session.Cache.Count); // keys were evicted
        session.TruncateTo(10);
        Assert.Equal(0, session.ProcessedTokens);
        Assert.Equal(0, session.Cache.Count);
        var got = session.Generate([5, 6], Greedy(3)).ToArray();
        Assert.Equal(12, session.LastStats!.PromptTokens);
        var fresh = new InferenceSession(model, sliding);
        Assert.Equal(fresh.Generate(golden.Tokens[..10].Concat([5, 6]).ToArray(), Greedy(3)).ToArray(), got);
    }

    [Fact]
    public void TruncateToRefusesCountsOutsideTheSequence()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model);
        session.Append([1, 2, 3]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => session.TruncateTo(4));
        Assert.Equal("tokens", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => session.TruncateTo(-1));
        Assert.Equal([1, 2, 3], session.Tokens);
        session.TruncateTo(0);
        Assert.Empty(session.Tokens);
        Assert.Throws<InvalidOperationException>(() => session.Evaluate());
    }

    [Fact]
    public void AFullCacheEndsGenerationAndATooLongPromptChangesNothing()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model, new SessionOptions { CacheCapacity = 16 });
        var tokens = session.Generate(golden.Tokens, Greedy(20)).ToArray();
        Assert.Equal(StopReason.ContextFull, session.LastStats!.StopReason);
        Assert.Equal(golden.Greedy[..5], tokens); // 12 + 4 fill the cache; the 5th is sampled from the 16th position's logits
        Assert.Equal(16, session.ProcessedTokens);
        Assert.Equal(17, session.Tokens.Count);

        var small = new InferenceSession(model, new SessionOptions { CacheCapacity = 8 });
        Assert.Throws<CacheFullException>(() => small.Generate(golden.Tokens, Greedy(1)));
        Assert.Empty(small.Tokens);
        Assert.Equal(0, small.Cache!.Count);
    }

    [Fact]
    public void SeededSamplingIsRepeatable()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var o = new GenerationOptions { MaxNewTokens = 16, IgnoreEos = true, Sampling = new SamplingOptions { Temperature = 1.5, TopP = 0.95, Seed = 7 } };
        int[] Run(GenerationOptions opts) => new InferenceSession(model).Generate(golden.Tokens, opts).ToArray();
        Assert.Equal(Run(o), Run(o));
        Assert.NotEqual(Run(o), Run(o with { Sampling = o.Sampling with { Seed = 8 } }));
    }

    [Fact]
    public void BadInputIsRefusedBeforeAnythingChanges()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var session = new InferenceSession(model);
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Generate([1, 512], Greedy(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Generate([-1], Greedy(1)));
        Assert.Throws<ArgumentException>(() => session.Generate([], Greedy(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Generate([1], new GenerationOptions { MaxNewTokens = -1 }));
        Assert.Throws<ArgumentException>(() => session.Generate([1], new GenerationOptions { StopStrings = [""] }));
        Assert.Empty(session.Tokens);
        Assert.Equal(0, session.Cache!.Count);
    }

    [Fact]
    public void DecodeStepsAllocateNothing()
    {
        var golden = Fixtures.Golden("tiny-bf16");
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 1 });
        var session = new InferenceSession(model);
        var o = new GenerationOptions { MaxNewTokens = 400, IgnoreEos = true, Sampling = new SamplingOptions { TopK = 20, TopP = 0.9, Seed = 1 } };
        using var e = session.Generate(golden.Tokens, o).GetEnumerator();
        for (int i = 0; i < 250; i++) Assert.True(e.MoveNext()); // warm: prefill, tiered JIT, pools
        AllocationProbe.AssertNoAllocation(() => Assert.True(e.MoveNext()), clean: 60, limit: 140, "decode steps");
    }

    [Fact]
    public void GenerationConfigReadsQwenDefaultsAndNamesBadFields()
    {
        var cfg = GenerationConfig.Parse("""{"bos_token_id":151643,"pad_token_id":151643,"do_sample":true,"eos_token_id":[151645,151643],"repetition_penalty":1.05,"temperature":0.7,"top_p":0.8,"top_k":20}""", "g.json");
        Assert.Equal([151645, 151643], cfg.EosTokenIds);
        var s = GenerationOptions.FromConfig(cfg, seed: 3).Sampling;
        Assert.Equal(new SamplingOptions { Temperature = 0.7, TopK = 20, TopP = 0.8, RepetitionPenalty = 1.05, Seed = 3 }, s);
        Assert.True(GenerationOptions.FromConfig(new GenerationConfig()).Sampling.IsGreedy);
        var e = Assert.Throws<CheckpointException>(() => GenerationConfig.Parse("""{"top_p": 2}""", "g.json"));
        Assert.Equal("top_p", e.Field);
        Assert.Contains("g.json", e.Message);
        e = Assert.Throws<CheckpointException>(() => GenerationConfig.Parse("""{"temperature": "hot"}""", "g.json"));
        Assert.Equal("temperature", e.Field);
        Assert.Throws<CheckpointException>(() => GenerationConfig.Parse("{", "g.json"));
    }
}
