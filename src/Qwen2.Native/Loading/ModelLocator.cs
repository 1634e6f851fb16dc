using System.Text.RegularExpressions;

namespace Qwen2.Native;

/// <summary>
/// Turns a model argument into a checkpoint directory or a GGUF file: a directory path as is (or the one GGUF model
/// in a directory without config.json), a <c>.gguf</c> file as is, or a Hugging Face hub id looked up in the local
/// Hugging Face cache the way <c>huggingface_hub</c> lays it out: <c>Qwen/Qwen2.5-0.5B-Instruct</c>, or a GGUF repo
/// with a quantization tag, <c>Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m</c>, matched case-insensitively against the
/// end of the snapshot's <c>.gguf</c> file names. Nothing is downloaded.
/// </summary>
public static partial class ModelLocator
{
    /// <summary>Environment variable naming the model when none is given.</summary>
    public const string ModelVariable = "QWEN2_MODEL";

    /// <summary>The hub id the help text suggests downloading.</summary>
    public const string SuggestedHubId = "Qwen/Qwen2.5-0.5B-Instruct";

    /// <summary>Resolves <paramref name="model"/> (or <c>QWEN2_MODEL</c> when it is null or empty) with the process environment.</summary>
    /// <exception cref="ModelNotFoundException">Neither a directory nor a cached hub snapshot matches; the message lists what was searched.</exception>
    public static string Resolve(string? model) =>
        Resolve(model, Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>Resolves <paramref name="model"/> with the environment and home directory given (tests pass fakes).</summary>
    /// <param name="model">A checkpoint directory or a hub id; null or empty reads <see cref="ModelVariable"/>.</param>
    /// <param name="getEnvironmentVariable">Reads an environment variable (null when unset).</param>
    /// <param name="homeDirectory">The user's home directory, for <c>~/.cache/huggingface/hub</c>; null or empty skips it.</param>
    /// <exception cref="ModelNotFoundException">Neither a directory nor a cached hub snapshot matches; the message lists what was searched.</exception>
    public static string Resolve(string? model, Func<string, string?> getEnvironmentVariable, string? homeDirectory)
    {
        ArgumentNullException.ThrowIfNull(getEnvironmentVariable);
        if (string.IsNullOrEmpty(model))
        {
            model = getEnvironmentVariable(ModelVariable);
            if (string.IsNullOrEmpty(model))
                throw new ModelNotFoundException(
                    $"no model given: pass a checkpoint directory or a Hugging Face hub id (e.g. {SuggestedHubId}), or set {ModelVariable}. {HowToGetOne(SuggestedHubId)}",
                    null, []);
        }
        if (Directory.Exists(model)) return InDirectory(model, model);

        var searched = new List<string> { model };
        if (File.Exists(model))
        {
            if (GgufFile.HasMagic(model)) return model;
            throw new ModelNotFoundException($"'{model}' is a file but not a GGUF file; pass a .gguf file or the checkpoint directory that holds config.json and the weights", model, searched);
        }
        // "owner/name:tag" picks a quantization from a GGUF repo, as llama.cpp's -hf and Ollama do.
        string id = model, tag = "";
        int colon = model.LastIndexOf(':');
        if (colon > 0 && colon < model.Length - 1 && LooksLikeHubId(model[..colon]) && TagPattern().IsMatch(model[(colon + 1)..]))
            (id, tag) = (model[..colon], model[(colon + 1)..]);
        if (!LooksLikeHubId(id))
            throw new ModelNotFoundException($"checkpoint directory '{model}' not found (and it is not a hub id such as {SuggestedHubId}). {HowToGetOne(SuggestedHubId)}", model, searched);

        string repoFolder = "models--" + id.Replace("/", "--", StringComparison.Ordinal);
        foreach (string cache in HubCacheDirectories(getEnvironmentVariable, homeDirectory))
        {
            string repo = Path.Combine(cache, repoFolder);
            searched.Add(repo);
            if (FindSnapshot(repo) is { } snapshot) return tag.Length > 0 ? Tagged(model, snapshot, tag, searched) : InDirectory(snapshot, model);
        }
        throw new ModelNotFoundException(
            $"model '{model}' not found: it is not a directory, and no snapshot holding config.json or a .gguf file is in the Hugging Face cache (searched {string.Join(", ", searched.Skip(1))}). {HowToGetOne(id)}",
            model, searched);
    }

    /// <summary>A directory as is when it holds config.json or no GGUF model; else its one GGUF model.</summary>
    private static string InDirectory(string directory, string model)
    {
        if (HasConfig(directory)) return directory;
        var models = GgufLocator.ModelsIn(directory);
        return models.Count switch
        {
            0 => directory,
            1 => models[0],
            _ => throw new ModelNotFoundException(
                $"'{model}' holds {models.Count} GGUF models ({GgufLocator.List(models)}); pick one with a quantization tag (e.g. {model}:q4_k_m for a hub id) or pass the file", model, [directory]),
        };
    }

    private static string Tagged(string model, string snapshot, string tag, List<string> searched)
    {
        var models = GgufLocator.ModelsIn(snapshot);
        var matches = GgufLocator.MatchTag(models, tag);
        if (matches.Count == 1) return matches[0];
        string there = models.Count == 0 ? "no .gguf files" : $"these GGUF models: {GgufLocator.List(models)}";
        throw new ModelNotFoundException(matches.Count == 0
            ? $"no GGUF file in '{snapshot}' matches the tag '{tag}'; it holds {there}"
            : $"the tag '{tag}' matches {matches.Count} GGUF files in '{snapshot}' ({GgufLocator.List(matches)}); give a longer tag", model, searched);
    }

    [GeneratedRegex(@"^[A-Za-z0-9_.\-]+$")]
    private static partial Regex TagPattern();

    /// <summary>
    /// The hub cache directories in the order <c>huggingface_hub</c> uses them: <c>$HF_HUB_CACHE</c>, <c>$HF_HOME/hub</c>,
    /// <c>$XDG_CACHE_HOME/huggingface/hub</c>, <c>~/.cache/huggingface/hub</c>; unset variables are skipped, duplicates dropped.
    /// </summary>
    public static IReadOnlyList<string> HubCacheDirectories(Func<string, string?> getEnvironmentVariable, string? homeDirectory)
    {
        ArgumentNullException.ThrowIfNull(getEnvironmentVariable);
        var list = new List<string>();
        void Add(string? path)
        {
            if (!string.IsNullOrEmpty(path) && !list.Contains(path, StringComparer.Ordinal)) list.Add(path);
        }
        Add(getEnvironmentVariable("HF_HUB_CACHE"));
        if (getEnvironmentVariable("HF_HOME") is { Length: > 0 } hfHome) Add(Path.Combine(hfHome, "hub"));
        if (getEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) Add(Path.Combine(xdg, "huggingface", "hub"));
        if (!string.IsNullOrEmpty(homeDirectory)) Add(Path.Combine(homeDirectory, ".cache", "huggingface", "hub"));
        return list;
    }

    /// <summary>
    /// The snapshot of a cached repo: the revision <c>refs/main</c> names when its snapshot holds config.json or a
    /// .gguf file, else the most recently modified snapshot that does; null when none does.
    /// </summary>
    private static string? FindSnapshot(string repo)
    {
        string snapshots = Path.Combine(repo, "snapshots");
        if (!Directory.Exists(snapshots)) return null;
        string refMain = Path.Combine(repo, "refs", "main");
        if (File.Exists(refMain))
        {
            string revision = File.ReadAllText(refMain).Trim();
            // A revision is a commit hash; anything with a path separator could point outside the cache.
            if (revision.Length > 0 && revision.IndexOfAny(['/', '\\']) < 0 && revision != ".." && HasModel(Path.Combine(snapshots, revision)))
                return Path.Combine(snapshots, revision);
        }
        return new DirectoryInfo(snapshots).EnumerateDirectories()
            .Where(d => HasModel(d.FullName))
            .OrderByDescending(d => d.LastWriteTimeUtc)
            .ThenBy(d => d.Name, StringComparer.Ordinal) // a stable pick when timestamps tie
            .Select(d => d.FullName)
            .FirstOrDefault();
    }

    private static bool HasConfig(string snapshot) => File.Exists(Path.Combine(snapshot, "config.json"));

    private static bool HasModel(string snapshot) => HasConfig(snapshot) || GgufLocator.ModelsIn(snapshot).Count > 0;

    /// <summary>Whether <paramref name="model"/> has the form of a hub id: <c>name</c> or <c>owner/name</c>, of letters, digits, '-', '_' and '.'.</summary>
    public static bool LooksLikeHubId(string model) => HubId().IsMatch(model);

    [GeneratedRegex(@"^(?!\.)[A-Za-z0-9_.\-]+(/(?!\.)[A-Za-z0-9_.\-]+)?$")]
    private static partial Regex HubId();

    private static string HowToGetOne(string hubId) =>
        $"Download one with `hf download {hubId}` (or `huggingface-cli download {hubId}`), or write a random-weight checkpoint with `qwen2 synth --shape qwen2-0.5b --out DIR`.";
}
