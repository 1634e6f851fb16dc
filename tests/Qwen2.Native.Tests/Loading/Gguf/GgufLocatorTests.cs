namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>--model with GGUF: a .gguf file, a directory holding one, a hub id with a quantization tag; clear errors listing what is there.</summary>
public sealed class GgufLocatorTests
{
    private const string Repo = "Qwen/Qwen2.5-0.5B-Instruct-GGUF";

    private static Func<string, string?> Cache(string cache) => name => name == "HF_HUB_CACHE" ? cache : null;

    private static void Gguf(string path) => File.WriteAllBytes(path, [.. "GGUF"u8, 3, 0, 0, 0]);

    /// <summary>A cached GGUF repo snapshot holding <paramref name="files"/> (no config.json, as Qwen's GGUF repos).</summary>
    private static string Snapshot(string cache, params string[] files)
    {
        string snapshot = Path.Combine(cache, "models--Qwen--Qwen2.5-0.5B-Instruct-GGUF", "snapshots", "rev1");
        Directory.CreateDirectory(snapshot);
        foreach (var f in files) Gguf(Path.Combine(snapshot, f));
        File.WriteAllText(Path.Combine(snapshot, "README.md"), "");
        return snapshot;
    }

    private static readonly string[] QwenFiles =
    [
        "qwen2.5-0.5b-instruct-q4_k_m.gguf", "qwen2.5-0.5b-instruct-q8_0.gguf", "qwen2.5-0.5b-instruct-q4_0.gguf",
        "qwen2.5-0.5b-instruct-q5_k_m-00001-of-00002.gguf", "qwen2.5-0.5b-instruct-q5_k_m-00002-of-00002.gguf",
    ];

    [Fact]
    public void A_gguf_file_is_returned_as_given()
    {
        using var dir = Fixtures.TempDir();
        string file = dir.File("m.gguf");
        Gguf(file);
        Assert.Equal(file, ModelLocator.Resolve(file, _ => null, null));
    }

    [Fact]
    public void A_file_that_is_not_gguf_is_refused()
    {
        using var dir = Fixtures.TempDir();
        string file = dir.File("model.safetensors");
        File.WriteAllText(file, "{}");
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve(file, _ => null, null));
        Assert.Contains("not a GGUF file", e.Message);
    }

    [Fact]
    public void A_directory_with_one_gguf_model_resolves_to_it_and_split_parts_count_once()
    {
        using var dir = Fixtures.TempDir();
        Gguf(dir.File("m-00001-of-00002.gguf"));
        Gguf(dir.File("m-00002-of-00002.gguf"));
        Assert.Equal(dir.File("m-00001-of-00002.gguf"), ModelLocator.Resolve(dir.Path, _ => null, null));
    }

    [Fact]
    public void A_directory_with_several_lists_them()
    {
        using var dir = Fixtures.TempDir();
        Gguf(dir.File("a-q8_0.gguf"));
        Gguf(dir.File("a-q4_0.gguf"));
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve(dir.Path, _ => null, null));
        Assert.Contains("a-q4_0.gguf, a-q8_0.gguf", e.Message);
        var load = Assert.Throws<CheckpointException>(() => Qwen2Model.Load(dir.Path));
        Assert.Contains("a-q4_0.gguf, a-q8_0.gguf", load.Message);
    }

    [Fact]
    public void A_checkpoint_directory_with_config_json_stays_a_directory()
    {
        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        Gguf(dir.File("export.gguf"));
        Assert.Equal(dir.Path, ModelLocator.Resolve(dir.Path, _ => null, null));
    }

    [Theory]
    [InlineData("q4_k_m", "qwen2.5-0.5b-instruct-q4_k_m.gguf")]
    [InlineData("Q4_K_M", "qwen2.5-0.5b-instruct-q4_k_m.gguf")]
    [InlineData("q8_0", "qwen2.5-0.5b-instruct-q8_0.gguf")]
    [InlineData("q5_k_m", "qwen2.5-0.5b-instruct-q5_k_m-00001-of-00002.gguf")]
    public void A_hub_id_with_a_tag_picks_the_matching_file(string tag, string expected)
    {
        using var dir = Fixtures.TempDir();
        string snapshot = Snapshot(dir.Path, QwenFiles);
        Assert.Equal(Path.Combine(snapshot, expected), ModelLocator.Resolve($"{Repo}:{tag}", Cache(dir.Path), null));
    }

    [Fact]
    public void A_tag_that_matches_nothing_lists_the_files()
    {
        using var dir = Fixtures.TempDir();
        Snapshot(dir.Path, QwenFiles);
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve($"{Repo}:q6_k", Cache(dir.Path), null));
        Assert.Contains("'q6_k'", e.Message);
        Assert.Contains("qwen2.5-0.5b-instruct-q4_k_m.gguf", e.Message);
        Assert.Contains("qwen2.5-0.5b-instruct-q5_k_m-00001-of-00002.gguf", e.Message);
    }

    [Fact]
    public void An_ambiguous_tag_lists_the_matches()
    {
        using var dir = Fixtures.TempDir();
        Snapshot(dir.Path, QwenFiles);
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve($"{Repo}:0", Cache(dir.Path), null));
        Assert.Contains("matches 2", e.Message);
        Assert.Contains("qwen2.5-0.5b-instruct-q4_0.gguf, qwen2.5-0.5b-instruct-q8_0.gguf", e.Message);
    }

    [Fact]
    public void A_gguf_repo_without_a_tag_lists_its_quantizations()
    {
        using var dir = Fixtures.TempDir();
        Snapshot(dir.Path, QwenFiles);
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve(Repo, Cache(dir.Path), null));
        Assert.Contains("qwen2.5-0.5b-instruct-q8_0.gguf", e.Message);
        Assert.Contains(":q4_k_m", e.Message);
    }

    [Fact]
    public void A_gguf_repo_with_one_file_needs_no_tag()
    {
        using var dir = Fixtures.TempDir();
        string snapshot = Snapshot(dir.Path, "qwen2.5-0.5b-instruct-q8_0.gguf");
        Assert.Equal(Path.Combine(snapshot, "qwen2.5-0.5b-instruct-q8_0.gguf"), ModelLocator.Resolve(Repo, Cache(dir.Path), null));
    }

    [Fact]
    public void A_tagged_id_not_in_the_cache_is_not_found()
    {
        using var dir = Fixtures.TempDir();
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve($"{Repo}:q4_k_m", Cache(dir.Path), null));
        Assert.Contains("hf download Qwen/Qwen2.5-0.5B-Instruct-GGUF", e.Message);
    }
}
