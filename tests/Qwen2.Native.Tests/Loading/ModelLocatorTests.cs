namespace Qwen2.Native.Tests;

/// <summary>ModelLocator: directories as given, hub ids found in each Hugging Face cache location, and clear not-found errors.</summary>
public class ModelLocatorTests
{
    private const string HubId = "Qwen/Qwen2.5-0.5B-Instruct";

    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    /// <summary>Lays out <c>models--Qwen--...</c> the way huggingface_hub does; returns the snapshot directory.</summary>
    private static string AddSnapshot(string cache, string revision, bool withConfig = true, DateTime? modified = null, string? refMain = null)
    {
        string repo = Path.Combine(cache, "models--Qwen--Qwen2.5-0.5B-Instruct");
        string snapshot = Path.Combine(repo, "snapshots", revision);
        Directory.CreateDirectory(snapshot);
        if (withConfig) File.WriteAllText(Path.Combine(snapshot, "config.json"), "{}");
        if (refMain is not null)
        {
            Directory.CreateDirectory(Path.Combine(repo, "refs"));
            File.WriteAllText(Path.Combine(repo, "refs", "main"), refMain);
        }
        if (modified is { } m) Directory.SetLastWriteTimeUtc(snapshot, m);
        return snapshot;
    }

    [Fact]
    public void AnExistingDirectoryIsReturnedAsGiven()
    {
        using var dir = Fixtures.TempDir();
        Assert.Equal(dir.Path, ModelLocator.Resolve(dir.Path, Env(), null));
        Assert.Equal(Fixtures.Model("tiny-f32"), ModelLocator.Resolve(Fixtures.Model("tiny-f32")));
    }

    [Theory]
    [InlineData("HF_HUB_CACHE")]
    [InlineData("HF_HOME")]
    [InlineData("XDG_CACHE_HOME")]
    [InlineData("home")]
    public void HubIdsAreFoundInEachCacheLocation(string where)
    {
        using var dir = Fixtures.TempDir();
        string cache = where switch
        {
            "HF_HUB_CACHE" => Path.Combine(dir.Path, "hubcache"),
            "HF_HOME" => Path.Combine(dir.Path, "hfhome", "hub"),
            "XDG_CACHE_HOME" => Path.Combine(dir.Path, "xdg", "huggingface", "hub"),
            _ => Path.Combine(dir.Path, "home", ".cache", "huggingface", "hub"),
        };
        string snapshot = AddSnapshot(cache, "abc123", refMain: "abc123\n");
        var env = Env(("HF_HUB_CACHE", Path.Combine(dir.Path, "hubcache")), ("HF_HOME", Path.Combine(dir.Path, "hfhome")), ("XDG_CACHE_HOME", Path.Combine(dir.Path, "xdg")));
        Assert.Equal(snapshot, ModelLocator.Resolve(HubId, env, Path.Combine(dir.Path, "home")));
    }

    [Fact]
    public void EarlierCacheLocationsWin()
    {
        using var dir = Fixtures.TempDir();
        string first = AddSnapshot(Path.Combine(dir.Path, "hubcache"), "one");
        AddSnapshot(Path.Combine(dir.Path, "hfhome", "hub"), "two");
        AddSnapshot(Path.Combine(dir.Path, "home", ".cache", "huggingface", "hub"), "three");
        var env = Env(("HF_HUB_CACHE", Path.Combine(dir.Path, "hubcache")), ("HF_HOME", Path.Combine(dir.Path, "hfhome")));
        Assert.Equal(first, ModelLocator.Resolve(HubId, env, Path.Combine(dir.Path, "home")));
        Assert.Equal(
            [Path.Combine(dir.Path, "hubcache"), Path.Combine(dir.Path, "hfhome", "hub"), Path.Combine(dir.Path, "home", ".cache", "huggingface", "hub")],
            ModelLocator.HubCacheDirectories(env, Path.Combine(dir.Path, "home")));
    }

    [Fact]
    public void RefsMainIsPreferredOverANewerSnapshot()
    {
        using var dir = Fixtures.TempDir();
        string main = AddSnapshot(dir.Path, "mainrev", modified: new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc), refMain: "mainrev");
        AddSnapshot(dir.Path, "newer", modified: new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.Equal(main, ModelLocator.Resolve(HubId, Env(("HF_HUB_CACHE", dir.Path)), null));
    }

    [Fact]
    public void WithoutAUsableRefTheNewestSnapshotHoldingConfigIsChosen()
    {
        using var dir = Fixtures.TempDir();
        AddSnapshot(dir.Path, "old", modified: new DateTime(2023, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        string newest = AddSnapshot(dir.Path, "new", modified: new DateTime(2024, 6, 1, 0, 0, 0, DateTimeKind.Utc));
        AddSnapshot(dir.Path, "newest-but-empty", withConfig: false, modified: new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        // refs/main names a snapshot that was never downloaded
        Directory.CreateDirectory(Path.Combine(dir.Path, "models--Qwen--Qwen2.5-0.5B-Instruct", "refs"));
        File.WriteAllText(Path.Combine(dir.Path, "models--Qwen--Qwen2.5-0.5B-Instruct", "refs", "main"), "missing");
        Assert.Equal(newest, ModelLocator.Resolve(HubId, Env(("HF_HUB_CACHE", dir.Path)), null));
    }

    [Fact]
    public void QwenModelVariableIsTheDefault()
    {
        using var dir = Fixtures.TempDir();
        Assert.Equal(dir.Path, ModelLocator.Resolve(null, Env(("QWEN2_MODEL", dir.Path)), null));
        Assert.Equal(dir.Path, ModelLocator.Resolve("", Env(("QWEN2_MODEL", dir.Path)), null));
        string snapshot = AddSnapshot(Path.Combine(dir.Path, "cache"), "r1");
        Assert.Equal(snapshot, ModelLocator.Resolve(null, Env(("QWEN2_MODEL", HubId), ("HF_HUB_CACHE", Path.Combine(dir.Path, "cache"))), null));
        // an explicit argument beats the variable
        Assert.Equal(Fixtures.Model("tiny-f32"), ModelLocator.Resolve(Fixtures.Model("tiny-f32"), Env(("QWEN2_MODEL", dir.Path)), null));
    }

    [Fact]
    public void NoModelAtAllSaysHowToGiveOne()
    {
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve(null, Env(), null));
        Assert.Contains("QWEN2_MODEL", e.Message);
        Assert.Contains("hf download Qwen/Qwen2.5-0.5B-Instruct", e.Message);
        Assert.Null(e.Model);
    }

    [Fact]
    public void AMissingHubIdListsTheSearchedCachesAndHowToDownload()
    {
        using var dir = Fixtures.TempDir();
        AddSnapshot(Path.Combine(dir.Path, "cache"), "incomplete", withConfig: false);
        var env = Env(("HF_HUB_CACHE", Path.Combine(dir.Path, "cache")), ("HF_HOME", Path.Combine(dir.Path, "hfhome")));
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve(HubId, env, Path.Combine(dir.Path, "home")));
        Assert.IsAssignableFrom<FileNotFoundException>(e);
        Assert.Equal(HubId, e.Model);
        Assert.Contains($"'{HubId}'", e.Message);
        foreach (var cache in new[] { Path.Combine(dir.Path, "cache"), Path.Combine(dir.Path, "hfhome", "hub"), Path.Combine(dir.Path, "home", ".cache", "huggingface", "hub") })
        {
            string repo = Path.Combine(cache, "models--Qwen--Qwen2.5-0.5B-Instruct");
            Assert.Contains(repo, e.Message);
            Assert.Contains(repo, e.Searched);
        }
        Assert.Contains("hf download Qwen/Qwen2.5-0.5B-Instruct", e.Message);
        Assert.Contains("huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct", e.Message);
        Assert.Contains("qwen2 synth --shape qwen2-0.5b --out DIR", e.Message);
    }

    [Fact]
    public void AMissingPathThatIsNoHubIdSaysSo()
    {
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve("/nonexistent/qwen2-checkpoint", Env(), null));
        Assert.Contains("checkpoint directory '/nonexistent/qwen2-checkpoint' not found", e.Message);
        Assert.Contains("qwen2 synth", e.Message);
        Assert.Equal(["/nonexistent/qwen2-checkpoint"], e.Searched);
    }

    [Fact]
    public void AFileIsNotACheckpointDirectory()
    {
        string config = Path.Combine(Fixtures.Model("tiny-f32"), "config.json");
        var e = Assert.Throws<ModelNotFoundException>(() => ModelLocator.Resolve(config, Env(), null));
        Assert.Contains($"'{config}' is a file", e.Message);
    }

    [Theory]
    [InlineData("Qwen/Qwen2.5-0.5B-Instruct", true)]
    [InlineData("gpt2", true)]
    [InlineData("a/b/c", false)]
    [InlineData("../x", false)]
    [InlineData("Qwen/..", false)]
    [InlineData("/abs/path", false)]
    [InlineData("has space/x", false)]
    public void HubIdsHaveTheHubsForm(string text, bool expected) => Assert.Equal(expected, ModelLocator.LooksLikeHubId(text));
}
