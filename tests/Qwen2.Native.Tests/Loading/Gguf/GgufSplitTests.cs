namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>Split GGUF models (NAME-00001-of-0000N.gguf with split.* metadata) load as one.</summary>
public sealed class GgufSplitTests
{
    /// <summary>The tiny model's tensors split after <paramref name="firstPartTensors"/>; the first part keeps the metadata.</summary>
    private static (string First, string Whole) Write(TempDir dir, int firstPartTensors, Action<RawGguf, RawGguf>? edit = null)
    {
        var whole = TinyGgufModel.Build(tied: false);
        File.WriteAllBytes(dir.File("whole.gguf"), whole.Build());
        var a = TinyGgufModel.Build(tied: false);
        var b = new RawGguf();
        b.Tensors.AddRange(a.Tensors.Skip(firstPartTensors));
        a.Tensors.RemoveRange(firstPartTensors, a.Tensors.Count - firstPartTensors);
        a.UInt32("split.no", 0).UInt32("split.count", 2).Int32("split.tensors.count", whole.Tensors.Count);
        b.UInt32("split.no", 1).UInt32("split.count", 2).Int32("split.tensors.count", whole.Tensors.Count);
        edit?.Invoke(a, b);
        File.WriteAllBytes(dir.File("m-00001-of-00002.gguf"), a.Build());
        File.WriteAllBytes(dir.File("m-00002-of-00002.gguf"), b.Build());
        return (dir.File("m-00001-of-00002.gguf"), dir.File("whole.gguf"));
    }

    [Fact]
    public void A_split_model_gives_the_logits_of_the_whole_file()
    {
        using var dir = Fixtures.TempDir();
        var (first, whole) = Write(dir, 6);
        using var split = Qwen2Model.Load(first, new ModelOptions { Threads = 1 });
        using var one = Qwen2Model.Load(whole, new ModelOptions { Threads = 1 });
        Assert.Equal(one.Forward([5, 9, 200]).Values.ToArray(), split.Forward([5, 9, 200]).Values.ToArray());
        Assert.Equal(2, split.Tensors.Select(t => t.File).Distinct().Count());
    }

    [Fact]
    public void A_missing_part_is_named()
    {
        using var dir = Fixtures.TempDir();
        var (first, _) = Write(dir, 6);
        File.Delete(dir.File("m-00002-of-00002.gguf"));
        var e = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(first));
        Assert.Equal(dir.File("m-00002-of-00002.gguf"), e.FilePath);
        Assert.Contains("part 2 of the 2", e.Message);
    }

    [Fact]
    public void A_part_with_the_wrong_number_is_refused()
    {
        using var dir = Fixtures.TempDir();
        var (first, _) = Write(dir, 6, (_, b) => b.Kv.RemoveAt(0));
        var e = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(first));
        Assert.Equal("split.no", e.Field);
    }

    [Fact]
    public void A_tensor_in_two_parts_is_refused()
    {
        using var dir = Fixtures.TempDir();
        var (first, _) = Write(dir, 6, (a, b) => b.Tensor("token_embd.weight", [TinyGgufModel.Hidden, TinyGgufModel.Vocab]));
        var e = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(first));
        Assert.Equal("token_embd.weight", e.TensorName);
        Assert.Contains("also in 'm-00001-of-00002.gguf'", e.Message);
    }

    [Fact]
    public void A_wrong_total_tensor_count_is_refused()
    {
        using var dir = Fixtures.TempDir();
        var (first, _) = Write(dir, 6, (a, _) => { a.Kv.RemoveAll(kv => System.Text.Encoding.UTF8.GetString(kv.Key) == "split.tensors.count"); a.Int32("split.tensors.count", 99); });
        var e = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(first));
        Assert.Equal("split.tensors.count", e.Field);
    }
}
