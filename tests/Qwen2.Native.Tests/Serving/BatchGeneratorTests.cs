using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// The continuous-batching generator: every request gets the tokens it gets alone (and the reference's greedy tokens),
/// whatever joins, leaves, is cancelled, shares a prefix or is set aside for memory.
/// </summary>
public class BatchGeneratorTests
{
    private static Qwen2Model Load(string name = "tiny-bf16") => Qwen2Model.Load(Fixtures.Model(name), new ModelOptions { Threads = 2 });

    private static int[] Alone(Qwen2Model model, IReadOnlyList<int> prompt, GenerationOptions options) =>
        new InferenceSession(model).Generate(prompt, options).ToArray();

    /// <summary>The stats of a request that must have ended by now.</summary>
    private static GenerationStats Done(GenerationRequest request)
    {
        Assert.True(request.Completion.IsCompletedSuccessfully, $"request {request.Id} has not ended");
        return request.Completion.GetAwaiter().GetResult();
    }

    private static GenerationOptions Sampled(ulong seed, int max = 12) => new()
    {
        MaxNewTokens = max, IgnoreEos = true,
        Sampling = new SamplingOptions { Temperature = 0.9, TopK = 40, TopP = 0.95, RepetitionPenalty = 1.1, Seed = seed },
    };

    [Theory]
    [InlineData("tiny-bf16")]
    [InlineData("untied-f16-mha")]
    [InlineData("sliding-f32")]
    public void EachRequestGetsTheTokensItGetsAlone(string name)
    {
        using var model = Load(name);
        var golden = Fixtures.Golden(name);
        using var generator = new BatchGenerator(model, new BatchGeneratorOptions { MaxPrefillTokensPerStep = 7, Cache = new BatchingKvCacheOptions { BlockSize = 4 } });
        var greedy = new GenerationOptions { MaxNewTokens = golden.Greedy.Length, IgnoreEos = true };
        var requests = new List<(GenerationRequest Request, int[] Prompt, GenerationOptions Options)>();
        void Submit(int[] prompt, GenerationOptions options) => requests.Add((generator.Submit(prompt, options), prompt, options));

        Submit(golden.Tokens, greedy);
        Submit(golden.Tokens[..5], Sampled(1));
        Submit([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9], Sampled(2, max: 20));
        for (int i = 0; i < 4; i++) Assert.True(generator.Step());
        // Late arrivals join the running batch.
        Submit([7], Sampled(3));
        Submit(golden.Tokens[..9], greedy with { MaxNewTokens = 6 });
        generator.RunToCompletion();
        Assert.False(generator.Step());

        Assert.Equal(golden.Greedy, requests[0].Request.Generated);
        foreach (var (request, prompt, options) in requests)
        {
            Assert.Equal(Alone(model, prompt, options), request.Generated);
            Assert.Equal(StopReason.MaxTokens, Done(request).StopReason);
            Assert.Equal(options.MaxNewTokens, Done(request).GeneratedTokens);
        }
        Assert.Equal(0, generator.Cache.Pool.BlocksInUse);
    }

    [Fact]
    public void CancellingOneRequestLeavesTheOthersUndisturbed()
    {
        using var model = Load();
        using var generator = new BatchGenerator(model);
        using var cts = new CancellationTokenSource();
        var a = generator.Submit([1, 2, 3], Sampled(10, max: 16));
        var b = generator.Submit([4, 5], Sampled(11, max: 16), cts.Token);
        var c = generator.Submit([6, 7, 8, 9], Sampled(12, max: 16));
        for (int i = 0; i < 5; i++) generator.Step();
        cts.Cancel();
        generator.RunToCompletion();

        Assert.Equal(StopReason.Cancelled, Done(b).StopReason);
        int produced = b.Generated.Count;
        Assert.InRange(produced, 1, 15);
        Assert.Equal(Alone(model, [4, 5], Sampled(11, max: 16))[..produced], b.Generated);
        Assert.Equal(Alone(model, [1, 2, 3], Sampled(10, max: 16)), a.Generated);
        Assert.Equal(Alone(model, [6, 7, 8, 9], Sampled(12, max: 16)), c.Generated);

        // Cancel() works the same way, and a request cancelled while waiting never runs.
        var d = generator.Submit([1], Sampled(13));
        d.Cancel();
        generator.RunToCompletion();
        Assert.Equal((StopReason.Cancelled, 0), (Done(d).StopReason, d.Generated.Count));
    }

    [Fact]
    public void ARequestThatSharesARunningPromptForksItsBlocks()
    {
        using var model = Load();
        using var generator = new BatchGenerator(model, new BatchGeneratorOptions { Cache = new BatchingKvCacheOptions { BlockSize = 4 } });
        int[] system = Enumerable.Range(10, 21).ToArray(); // a shared 21-token "system prompt"
        var first = generator.Submit(system, Sampled(20, max: 30));
        generator.Step(); // the first request's prompt is now in the cache
        int[] second = [.. system, 200, 201];
        var other = generator.Submit(second, Sampled(21));
        generator.Step();
        Assert.Equal(21, other.SharedPromptTokens);
        Assert.True(generator.Cache.Pool.BlocksShared >= 5, $"{generator.Cache.Pool.BlocksShared} blocks shared");
        generator.RunToCompletion();
        Assert.Equal(Alone(model, system, Sampled(20, max: 30)), first.Generated);
        Assert.Equal(Alone(model, second, Sampled(21)), other.Generated);

        // Submitted together, the second waits one step for the first to compute the shared prompt, then forks it.
        using var together = new BatchGenerator(model, new BatchGeneratorOptions { Cache = new BatchingKvCacheOptions { BlockSize = 4 } });
        var t1 = together.Submit(system, Sampled(20, max: 30));
        var t2 = together.Submit(second, Sampled(21));
        together.RunToCompletion();
        Assert.Equal(21, t2.SharedPromptTokens);
        Assert.Equal(first.Generated, t1.Generated);
        Assert.Equal(other.Generated, t2.Generated);

        // With sharing off, nothing is forked and the tokens are the same.
        using var plain = new BatchGenerator(model, new BatchGeneratorOptions { SharePrefixes = false });
        var a = plain.Submit(system, Sampled(20, max: 30));
        plain.Step();
        var b = plain.Submit(second, Sampled(21));
        plain.RunToCompletion();
        Assert.Equal(0, b.SharedPromptTokens);
        Assert.Equal(other.Generated, b.Generated);
        Assert.Equal(first.Generated, a.Generated);
    }

    [Fact]
    public void WhenThePoolRunsShortTheNewestRequestWaitsAndResumes()
    {
        using var model = Load();
        long blockBytes = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 }).Pool.BlockBytes;
        // Six blocks of four tokens: three requests of 5 + 12 tokens cannot all be held at once.
        using var generator = new BatchGenerator(model, new BatchGeneratorOptions { Cache = new BatchingKvCacheOptions { BlockSize = 4, MaxBytes = 6 * blockBytes } });
        int[][] prompts = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]];
        var requests = prompts.Select((p, i) => generator.Submit(p, Sampled((ulong)(30 + i)))).ToArray();
        generator.RunToCompletion();
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(StopReason.MaxTokens, Done(requests[i]).StopReason);
            Assert.Equal(Alone(model, prompts[i], Sampled((ulong)(30 + i))), requests[i].Generated);
        }
        Assert.True(requests.Sum(r => r.Preemptions) > 0, "no request was set aside");

        // A request that can never fit ends as ContextFull instead of waiting forever.
        var huge = generator.Submit(Enumerable.Range(1, 30).ToArray(), Sampled(40));
        generator.RunToCompletion();
        Assert.Equal(StopReason.ContextFull, Done(huge).StopReason);
    }

    [Fact]
    public async Task TheBackgroundLoopStreamsEachRequest()
    {
        using var model = Load();
        var golden = Fixtures.Golden("tiny-bf16");
        var generator = new BatchGenerator(model);
        generator.Start();
        Assert.Throws<InvalidOperationException>(() => generator.Step());
        var greedy = new GenerationOptions { MaxNewTokens = golden.Greedy.Length, IgnoreEos = true };
        var requests = Enumerable.Range(0, 4).Select(_ => generator.Submit(golden.Tokens, greedy)).ToArray();
        var streams = await Task.WhenAll(requests.Select(async r =>
        {
            var got = new List<int>();
            await foreach (int t in r.ReadTokensAsync()) got.Add(t);
            return got;
        }));
        foreach (var s in streams) Assert.Equal(golden.Greedy, s);

        // Disposing ends what is still running as cancelled.
        var endless = generator.Submit([1, 2], new GenerationOptions { MaxNewTokens = 100_000, IgnoreEos = true });
        await foreach (int _ in endless.ReadTokensAsync()) break;
        generator.Dispose();
        Assert.Equal(StopReason.Cancelled, (await endless.Completion).StopReason);
        Assert.Throws<ObjectDisposedException>(() => generator.Submit([1]));
    }

    [Fact]
    public void StopsAtEndOfSequenceAndRefusesBadRequests()
    {
        using var model = Load();
        var golden = Fixtures.Golden("tiny-bf16");
        using var generator = new BatchGenerator(model);
        // Make the reference's fifth greedy token a stop id: the request ends there, that token included.
        var r = generator.Submit(golden.Tokens, new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [golden.Greedy[4]] });
        var zero = generator.Submit(golden.Tokens, new GenerationOptions { MaxNewTokens = 0 });
        generator.RunToCompletion();
        int stop = Array.IndexOf(golden.Greedy, golden.Greedy[4]);
        Assert.Equal(golden.Greedy[..(stop + 1)], r.Generated);
        Assert.Equal(StopReason.EndOfSequence, Done(r).StopReason);
        Assert.Equal((StopReason.MaxTokens, 0), (Done(zero).StopReason, zero.Generated.Count));

        Assert.Throws<ArgumentException>(() => generator.Submit([]));
        Assert.Contains("index 1", Assert.Throws<ArgumentOutOfRangeException>(() => generator.Submit([1, model.Config.VocabSize])).Message);
        Assert.Throws<ArgumentException>(() => generator.Submit([1], new GenerationOptions { StopStrings = ["x"] }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchGenerator(model, new BatchGeneratorOptions { MaxBatchSize = 0 }));
    }
}
