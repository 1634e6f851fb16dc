using Qwen2.Native.Generation;
using Qwen2.Native.Serving;

namespace Qwen2.Native.Tests;

/// <summary>
/// Log-probabilities: the log-softmax of the model's logits, held to one computed in double from the independent
/// reference's golden logits, from both generators; the alternatives are the most likely tokens, in order.
/// </summary>
public class LogprobsTests
{
    /// <summary>ln softmax(row), in double, one exp per entry.</summary>
    private static double[] LogSoftmax(float[] row)
    {
        double max = row.Max();
        double sum = row.Sum(v => Math.Exp(v - max));
        return row.Select(v => v - max - Math.Log(sum)).ToArray();
    }

    /// <summary>Each logprob is the reference's at its id, and the alternatives are the reference's largest, best first.</summary>
    private static void AssertMatches(double[] reference, int chosen, TokenLogprobs actual, int top)
    {
        Assert.Equal(chosen, actual.Chosen.Token);
        Assert.Equal(reference[chosen], actual.Chosen.Logprob, 1e-4);
        Assert.Equal(top, actual.Top.Count);
        var best = reference.OrderDescending().Take(top).ToArray();
        for (int k = 0; k < top; k++)
        {
            Assert.Equal(reference[actual.Top[k].Token], actual.Top[k].Logprob, 1e-4);
            // By value, not id: ids whose logits the reference and the engine round differently may swap places.
            Assert.Equal(best[k], actual.Top[k].Logprob, 1e-4);
            if (k > 0) Assert.True(actual.Top[k].Logprob <= actual.Top[k - 1].Logprob);
        }
        Assert.Equal(top, actual.Top.Select(t => t.Token).Distinct().Count());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(20)]
    public void BatchedRequestsGiveTheReferencesLogSoftmax(int top)
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"), new ModelOptions { Threads = 2 });
        var golden = Fixtures.Golden("tiny-bf16");
        using var generator = new BatchGenerator(model);
        var options = new GenerationOptions { MaxNewTokens = golden.Greedy.Length, IgnoreEos = true, TopLogprobs = top };
        var request = generator.Submit(golden.Tokens, options);
        var plain = generator.Submit(golden.Tokens, options with { TopLogprobs = null });
        generator.RunToCompletion();
        Assert.Equal(golden.Greedy, request.Generated);
        for (int i = 0; i < golden.Greedy.Length; i++)
        {
            var lp = request.GetLogprobs(i);
            AssertMatches(LogSoftmax(golden.GreedyLogits[i]), golden.Greedy[i], lp, top);
            // Greedy picks the most likely token.
            if (top > 0) Assert.Equal(lp.Chosen, lp.Top[0]);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => request.GetLogprobs(golden.Greedy.Length));
        Assert.Throws<InvalidOperationException>(() => plain.GetLogprobs(0));
    }

    [Fact]
    public void SessionLogprobsAreTheModelsBeforeTemperatureAndPenalty()
    {
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-f32"));
        var golden = Fixtures.Golden("tiny-f32");
        var session = new InferenceSession(model);
        // Sampling changes which token is picked, not the distribution reported: the model's own, at the picked token.
        var options = new GenerationOptions
        {
            MaxNewTokens = 6, IgnoreEos = true, TopLogprobs = 3,
            Sampling = new SamplingOptions { Temperature = 1.7, TopK = 50, RepetitionPenalty = 1.3, Seed = 7 },
        };
        var ids = new List<int>();
        var steps = new List<TokenLogprobs>();
        foreach (int id in session.Generate(golden.Tokens, options))
        {
            ids.Add(id);
            steps.Add(session.LastLogprobs!);
        }
        // The reference for each step: the model's logits after the prompt and the tokens picked so far, recomputed
        // without a cache; the first step's row is the golden one.
        AssertMatches(LogSoftmax(golden.Logits[^1]), ids[0], steps[0], 3);
        for (int i = 1; i < ids.Count; i++)
        {
            var logits = model.Forward([.. golden.Tokens, .. ids[..i]]).Last.ToArray();
            AssertMatches(LogSoftmax(logits), ids[i], steps[i], 3);
        }
        session.Generate([1], new GenerationOptions { MaxNewTokens = 1 }).ToArray();
        Assert.Null(session.LastLogprobs);
    }

    [Fact]
    public void TiesKeepTheLowerIdAndImpossibleTokensHaveNoMass()
    {
        float[] logits = [1f, 3f, float.NegativeInfinity, 3f, 2f, 3f, float.NegativeInfinity];
        var scratch = new float[logits.Length];
        var lp = TokenLogprobs.Compute(logits, 2, 4, scratch);
        Assert.Equal([1, 3, 5, 4], lp.Top.Select(t => t.Token));
        Assert.Equal(float.NegativeInfinity, lp.Chosen.Logprob);
        double norm = 3 + Math.Log(3 + Math.Exp(-1) + Math.Exp(-2));
        Assert.Equal(3 - norm, lp.Top[0].Logprob, 1e-6);
        Assert.Equal(2 - norm, lp.Top[3].Logprob, 1e-6);
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenLogprobs.Compute(logits, 0, TokenLogprobs.MaxTop + 1, scratch));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { TopLogprobs = -1 }.Validate());
    }
}
