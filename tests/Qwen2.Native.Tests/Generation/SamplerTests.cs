using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>The sampler against a plain restatement of Hugging Face's logits processors, and its determinism.</summary>
public class SamplerTests
{
    private static readonly float[] Logits = [2.0f, 1.5f, 1.5f, 0.3f, -0.7f, -1.0f, 3.1f, 0.0f, -2.5f, 1.1f];

    /// <summary>
    /// The distribution HF's processors leave, computed the slow obvious way: penalty, temperature, then each filter
    /// masks to -inf using the softmax of what is left (top-k keeps ties, top-p by ascending cumulative mass, min-p).
    /// </summary>
    private static double[] Expected(float[] logits, SamplingOptions o, int[] context)
    {
        var x = logits.Select(v => (double)v).ToArray();
        foreach (int id in context.Distinct()) x[id] = x[id] < 0 ? x[id] * o.RepetitionPenalty : x[id] / o.RepetitionPenalty;
        for (int i = 0; i < x.Length; i++) x[i] /= o.Temperature;
        if (o.TopK > 0 && o.TopK < x.Length)
        {
            double kth = x.OrderByDescending(v => v).ElementAt(o.TopK - 1);
            for (int i = 0; i < x.Length; i++) if (x[i] < kth) x[i] = double.NegativeInfinity;
        }
        if (o.TopP < 1)
        {
            var p = Softmax(x);
            // Ties rank the lower id first (higher), the sampler's documented rule.
            var asc = Enumerable.Range(0, x.Length).OrderBy(i => x[i]).ThenByDescending(i => i).ToArray();
            double cum = 0;
            var remove = new List<int>();
            for (int j = 0; j < asc.Length - 1; j++) { cum += p[asc[j]]; if (cum <= 1 - o.TopP) remove.Add(asc[j]); }
            foreach (int i in remove) x[i] = double.NegativeInfinity;
        }
        if (o.MinP > 0)
        {
            var p = Softmax(x);
            double top = p.Max();
            for (int i = 0; i < x.Length; i++) if (p[i] < o.MinP * top) x[i] = double.NegativeInfinity;
        }
        return Softmax(x);
    }

    private static double[] Softmax(double[] x)
    {
        double m = x.Max();
        var e = x.Select(v => double.IsNegativeInfinity(v) ? 0 : Math.Exp(v - m)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    public static TheoryData<double, int, double, double, double> Settings => new()
    {
        { 1.0, 0, 1.0, 0.0, 1.0 },
        { 0.7, 0, 1.0, 0.0, 1.0 },
        { 1.3, 3, 1.0, 0.0, 1.0 },
        { 1.0, 2, 1.0, 0.0, 1.0 },   // the 2nd and 3rd largest tie: all three are kept
        { 0.8, 0, 0.8, 0.0, 1.0 },
        { 1.0, 5, 0.6, 0.0, 1.0 },
        { 1.0, 0, 1.0, 0.2, 1.0 },
        { 0.9, 6, 0.9, 0.1, 1.3 },
        { 2.0, 0, 0.95, 0.05, 1.1 },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void DrawsFollowTheFilteredDistribution(double temperature, int topK, double topP, double minP, double penalty)
    {
        var o = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, RepetitionPenalty = penalty, Seed = 1234 };
        int[] context = [0, 6, 6, 4];
        var expected = Expected(Logits, o, context);
        var sampler = new Sampler(o, Logits.Length);
        const int draws = 40000;
        var counts = new int[Logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Sample(Logits, context)]++;
        for (int i = 0; i < Logits.Length; i++)
        {
            double f = counts[i] / (double)draws;
            if (expected[i] == 0) Assert.True(counts[i] == 0, $"token {i} was filtered out but drawn {counts[i]} times");
            else Assert.True(Math.Abs(f - expected[i]) < 0.012, $"token {i}: drawn {f:F4}, expected {expected[i]:F4}");
        }
    }

    [Fact]
    public void SameSeedGivesSameDrawsAndOtherSeedsDiffer()
    {
        var o = new SamplingOptions { Temperature = 1.5, Seed = 42 };
        int[] Run(SamplingOptions opts) { var s = new Sampler(opts, Logits.Length); return Enumerable.Range(0, 200).Select(_ => s.Sample(Logits, [])).ToArray(); }
        Assert.Equal(Run(o), Run(o));
        Assert.NotEqual(Run(o), Run(o with { Seed = 43 }));
        Assert.Equal(42UL, new Sampler(o, Logits.Length).Seed);
    }

    [Fact]
    public void GreedyIsArgmaxAfterThePenalty()
    {
        var greedy = new Sampler(SamplingOptions.Greedy, Logits.Length);
        Assert.Equal(6, greedy.Sample(Logits, []));
        // 3.1 / 3 falls below 2.0: token 0 wins once 6 is penalized; with 0 penalized too, the first of the 1.5 tie.
        var penalized = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 3 }, Logits.Length);
        Assert.Equal(0, penalized.Sample(Logits, [6]));
        Assert.Equal(1, penalized.Sample(Logits, [6, 0]));
        Assert.Equal(1, penalized.Sample(Logits, [6, 0, 9, 4]));
        Assert.Equal(6, new Sampler(new SamplingOptions { TopK = 1, Seed = 3 }, Logits.Length).Sample(Logits, []));
    }

    [Fact]
    public void NegativeInfinityIsNeverDrawnAndAllMaskedIsAnError()
    {
        var logits = new float[] { float.NegativeInfinity, 0f, float.NegativeInfinity, 0f };
        var s = new Sampler(new SamplingOptions { Seed = 9 }, 4);
        for (int i = 0; i < 1000; i++) Assert.True(s.Sample(logits, []) is 1 or 3);
        var none = new float[] { float.NegativeInfinity, float.NaN, float.NegativeInfinity, float.NegativeInfinity };
        Assert.Throws<InvalidOperationException>(() => s.Sample(none, []));
    }

    [Theory]
    [InlineData("temperature", -0.1, 0, 1.0, 0.0, 1.0)]
    [InlineData("top_k", 1.0, -1, 1.0, 0.0, 1.0)]
    [InlineData("top_p", 1.0, 0, 0.0, 0.0, 1.0)]
    [InlineData("top_p", 1.0, 0, 1.5, 0.0, 1.0)]
    [InlineData("min_p", 1.0, 0, 1.0, -0.5, 1.0)]
    [InlineData("repetition_penalty", 1.0, 0, 1.0, 0.0, 0.0)]
    public void BadOptionsNameTheField(string field, double t, int k, double p, double minP, double rep)
    {
        var o = new SamplingOptions { Temperature = t, TopK = k, TopP = p, MinP = minP, RepetitionPenalty = rep };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(o, 10));
        Assert.Equal(field, e.ParamName);
    }

    [Fact]
    public void WrongWidthAndBadContextAreErrors()
    {
        var s = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 1.2 }, 10);
        Assert.Throws<ArgumentException>(() => s.Sample(new float[9], []));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Sample(Logits, [10]));
    }

    [Fact]
    public void SamplingAllocatesNothing()
    {
        var logits = Enumerable.Range(0, 151936).Select(i => MathF.Sin(i * 0.37f) * 8).ToArray();
        var s = new Sampler(new SamplingOptions { Temperature = 0.7, TopK = 20, TopP = 0.8, MinP = 0.05, RepetitionPenalty = 1.05, Seed = 5 }, logits.Length);
        int[] context = [1, 2, 3];
        for (int i = 0; i < 200; i++) s.Sample(logits, context); // past tiered JIT's rejits, which allocate once
        AllocationProbe.AssertNoAllocation(() => s.Sample(logits, context), clean: 20, limit: 200, "sampling");
    }
}
