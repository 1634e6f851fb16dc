using Qwen2.Kernels;

namespace Qwen2.Native.Tests;

/// <summary>The shared cache of synthesized checkpoints: written once, marked complete last, then reused.</summary>
public class SyntheticCheckpointCacheTests
{
    [Fact]
    public void WritesOnceThenReuses()
    {
        using var dir = Fixtures.TempDir();
        string target = Path.Combine(dir.Path, "ckpt");
        var log = new StringWriter();
        int extras = 0;
        string first = SyntheticCheckpointCache.GetOrCreate(SyntheticShape.Tiny, WeightType.BF16, target, log, d => { extras++; Assert.False(File.Exists(Path.Combine(d, SyntheticCheckpointCache.CompleteMarker))); });
        Assert.Equal(target, first);
        Assert.Equal(1, extras);
        Assert.True(File.Exists(Path.Combine(target, SyntheticCheckpointCache.CompleteMarker)));
        Assert.Contains("synthesizing tiny", log.ToString());
        using (var m = Qwen2Model.Load(first)) Assert.Equal(SyntheticShape.Tiny.HiddenSize, m.Config.HiddenSize);

        var again = new StringWriter();
        Assert.Equal(target, SyntheticCheckpointCache.GetOrCreate(SyntheticShape.Tiny, WeightType.BF16, target, again, _ => extras++));
        Assert.Equal(1, extras);
        Assert.StartsWith("reusing", again.ToString());
    }

    [Fact]
    public void DefaultDirectoryIsTheDemos()
    {
        string d = SyntheticCheckpointCache.DirectoryFor(SyntheticShape.Qwen2_0_5B, WeightType.BF16);
        Assert.Equal("demo-qwen2-0.5b-bf16", Path.GetFileName(d));
        Assert.Equal(SyntheticCheckpointCache.Root, Path.GetDirectoryName(d));
    }
}
