using Qwen2.Native.Generation;

namespace Qwen2.Native.Tests;

/// <summary>The parts every generator shares: the token history, the stop criteria and the defaults.</summary>
public class GenerationCoreTests
{
    [Fact]
    public void TokenHistoryKeepsTheTokensAndTheirDistinctIdsThroughGrowthAndTruncation()
    {
        var h = new TokenHistory(vocabSize: 10, capacity: 2);
        h.AddRange([3, 1, 3, 4]);
        h.Add(1);
        h.Add(9);
        Assert.Equal([3, 1, 3, 4, 1, 9], h);
        Assert.Equal([3, 1, 3, 4, 1, 9], h.Span.ToArray());
        Assert.Equal(6, h.Count);
        Assert.Equal(9, h[^1]);
        Assert.Equal([3, 1, 4, 9], h.Distinct.ToArray()); // in the order first seen, once each
        Assert.Equal([4, 1], h.Memory(3, 2).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => h[6]);
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Memory(5, 2));

        h.TruncateTo(3);
        Assert.Equal([3, 1, 3], h);
        Assert.Equal([3, 1], h.Distinct.ToArray()); // 4 and 9 are no longer seen
        h.Add(9);
        Assert.Equal([3, 1, 9], h.Distinct.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => h.TruncateTo(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.TruncateTo(-1));

        h.Clear();
        Assert.Empty(h);
        Assert.Equal(0, h.Distinct.Length);
        h.Add(4);
        Assert.Equal([4], h.Distinct.ToArray());
    }

    [Fact]
    public void TokenIdsOutsideTheVocabularyAreRefusedWithTheirIndex()
    {
        TokenHistory.Validate([0, 511, 5], 512, "ids");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TokenHistory.Validate([0, 512], 512, "prompt"));
        Assert.Equal("prompt", e.ParamName);
        Assert.Equal(512, e.ActualValue);
        Assert.StartsWith("token id at index 1 is 512; this model's ids run from 0 to 511", e.Message, StringComparison.Ordinal);
        Assert.Contains("index 0 is -1", Assert.Throws<ArgumentOutOfRangeException>(() => TokenHistory.Validate([-1], 512, "ids")).Message);
    }

    [Theory]
    [InlineData(7, 1, false, StopReason.EndOfSequence)]
    [InlineData(7, 4, true, StopReason.EndOfSequence)]   // a stop id comes first
    [InlineData(5, 4, true, StopReason.MaxTokens)]       // then the limit
    [InlineData(5, 3, true, StopReason.ContextFull)]     // then a full context
    [InlineData(5, 3, false, StopReason.None)]
    public void StopCriteriaCheckStopIdsThenTheLimitThenTheContext(int token, int generated, bool full, StopReason expected)
    {
        var stop = new StopCriteria(new GenerationOptions { MaxNewTokens = 4 }, defaultStopIds: [7, 8]);
        Assert.Equal(expected, stop.After(token, generated, full));
    }

    [Fact]
    public void StopIdsComeFromTheOptionsOrTheDefaultsUnlessEosIsIgnored()
    {
        int[] defaults = [7, 8];
        Assert.Equal(StopReason.EndOfSequence, new StopCriteria(new GenerationOptions(), defaults).After(8, 1, false));
        var own = new StopCriteria(new GenerationOptions { StopTokenIds = [3] }, defaults);
        Assert.Equal(StopReason.None, own.After(8, 1, false));
        Assert.Equal(StopReason.EndOfSequence, own.After(3, 1, false));
        var ignore = new StopCriteria(new GenerationOptions { StopTokenIds = [3], IgnoreEos = true, MaxNewTokens = 9 }, defaults);
        Assert.Equal(StopReason.None, ignore.After(3, 1, false));
        Assert.Equal(StopReason.None, ignore.After(7, 1, false));
        Assert.Equal(9, ignore.MaxNewTokens);
    }

    [Fact]
    public void DefaultsAreReadOncePerModelFromItsDirectory()
    {
        using var dir = Fixtures.TempDir();
        foreach (var f in Directory.GetFiles(Fixtures.Model("tiny-f32"))) File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        File.WriteAllText(dir.File("generation_config.json"), """{"eos_token_id": [511, 287, 287], "do_sample": true, "temperature": 0.5, "max_new_tokens": 9}""");
        using var model = Qwen2Model.Load(dir.Path);
        var d = GenerationDefaults.For(model);
        Assert.Same(d, GenerationDefaults.For(model));
        Assert.Equal([511, 287], d.StopTokenIds); // config.json's 511 is not repeated
        Assert.Equal(0.5, d.Config.Temperature);
        Assert.Equal(GenerationOptions.FromConfig(d.Config), d.Options);
        Assert.Equal(9, d.Options.MaxNewTokens);
        Assert.Same(d.Options, d.Resolve(null));
        var mine = new GenerationOptions { MaxNewTokens = 1 };
        Assert.Same(mine, d.Resolve(mine));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Resolve(new GenerationOptions { MaxNewTokens = -1 }));

        // Another load of the same directory reads the file again.
        File.WriteAllText(dir.File("generation_config.json"), """{"eos_token_id": 3}""");
        using var again = Qwen2Model.Load(dir.Path);
        Assert.Equal([3, 511], GenerationDefaults.For(again).StopTokenIds);
        Assert.True(GenerationDefaults.For(again).Options.Sampling.IsGreedy);
    }
}
