namespace Qwen2.Native.Tests;

/// <summary>
/// A token's logits do not depend on how its sequence was cut into forward steps: one step, chunks, token by token,
/// or a prefix computed earlier (what prefix caching and chunked prefill rely on to equal a cold run bit for bit).
/// </summary>
public class StepSplitTests
{
    private static int[] Bits(ReadOnlySpan<float> logits) => logits.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    /// <summary>The last token's logits after <paramref name="ids"/> run in steps of the given sizes, on the paged cache and on a ring.</summary>
    private static (int[] Paged, int[] Ring) Run(Qwen2Model model, int[] ids, int[] steps)
    {
        Assert.Equal(ids.Length, steps.Sum());
        var paged = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 }).Join();
        var ring = model.CreateCache(ids.Length);
        float[] lastPaged = [], lastRing = [];
        int at = 0;
        foreach (int n in steps)
        {
            lastPaged = model.ForwardBatch([new BatchInput(ids[at..(at + n)], paged)])[0].Last.ToArray();
            lastRing = model.Forward(ids.AsSpan(at, n), ring, useCache: true, LogitsSelection.Last).Logits.Last.ToArray();
            at += n;
        }
        return (Bits(lastPaged), Bits(lastRing));
    }

    private static void AssertSplitsAgree(string name, int[][] splits)
    {
        using var model = Qwen2Model.Load(Fixtures.Model(name), new ModelOptions { Threads = 2 });
        var golden = Fixtures.Golden(name);
        AssertSplitsAgree(model, name, [.. golden.Tokens, .. golden.Greedy], splits);
    }

    private static void AssertSplitsAgree(Qwen2Model model, string name, int[] ids, int[][] splits)
    {
        var whole = Run(model, ids, [ids.Length]);
        Assert.Equal(whole.Paged, whole.Ring);
        foreach (var split in splits)
        {
            var (paged, ring) = Run(model, ids, split);
            Assert.True(whole.Paged.SequenceEqual(paged), $"{name}, steps {string.Join('+', split)} on the paged cache: logits differ from one step's");
            Assert.True(whole.Paged.SequenceEqual(ring), $"{name}, steps {string.Join('+', split)} on a ring cache: logits differ from one step's");
        }
    }

    /// <summary>Splits into steps of at least four tokens, so that every step runs the same attention kernel on every path.</summary>
    [Theory]
    [MemberData(nameof(BatchingTests.Models), MemberType = typeof(BatchingTests))]
    public void ChunksOfFourOrMoreGiveTheBitsOfOneStep(string name)
    {
        int n = Fixtures.Golden(name) is var g ? g.Tokens.Length + g.Greedy.Length : 0;
        AssertSplitsAgree(name, [[4, n - 4], [n - 4, 4], [5, 6, 7, n - 18], [16, n - 16], [9, n - 9]]);
    }

    /// <summary>
    /// Steps of one to three tokens too: these fixtures' heads (16 wide, two per kv head) take the same attention kernel
    /// for any number of queries on every path. (On AVX-512, heads a multiple of 64 wide take a tiled kernel from four
    /// queries on, which sums q·k in another order than the decode kernel.)
    /// </summary>
    [Theory]
    [InlineData("tiny-bf16")]
    [InlineData("tiny-f32")]
    public void TokenByTokenAndOddChunksGiveTheBitsOfOneStep(string name)
    {
        int n = Fixtures.Golden(name) is var g ? g.Tokens.Length + g.Greedy.Length : 0;
        AssertSplitsAgree(name, [Enumerable.Repeat(1, n).ToArray(), [n - 1, 1], [n - 3, 3], [2, 3, 1, n - 6], [7, n - 8, 1]]);
    }

    /// <summary>
    /// Quantized weights too: each token's activations are quantized on their own, so with attention's bits fixed the
    /// int8 activations, and so the logits, do not depend on the steps either.
    /// </summary>
    [Theory]
    [InlineData(Gguf.GgufFileType.Q4_K_M)]
    [InlineData(Gguf.GgufFileType.Q8_0)]
    public void QuantizedChunksGiveTheBitsOfOneStep(Gguf.GgufFileType type)
    {
        using var model = Qwen2Model.Load(QuantizedCheckpoints.Gguf(QuantizedCheckpoints.H256, type), new ModelOptions { Threads = 2 });
        var rnd = new Random(5);
        int[] ids = Enumerable.Range(0, 29).Select(_ => rnd.Next(model.Config.VocabSize)).ToArray();
        AssertSplitsAgree(model, $"h256 {type}", ids, [[4, 25], [25, 4], [5, 6, 7, 11], [16, 13]]);
    }
}
