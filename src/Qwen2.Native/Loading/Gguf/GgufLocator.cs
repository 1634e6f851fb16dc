namespace Qwen2.Native;

/// <summary>Finds GGUF models in a directory: each unsplit <c>.gguf</c> file, and the first part of each split one.</summary>
internal static class GgufLocator
{
    /// <summary>The GGUF models of <paramref name="directory"/> (top level only), by file name.</summary>
    public static IReadOnlyList<string> ModelsIn(string directory)
    {
        if (!Directory.Exists(directory)) return [];
        var names = new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.TopDirectoryOnly)
            .Where(f => f.Name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            .Select(f => GgufModelFiles.FirstPartName(f.Name) ?? f.Name)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .Select(n => Path.Combine(directory, n))
            .ToList();
        return names;
    }

    /// <summary>
    /// The GGUF model <paramref name="path"/> names: the file itself, or the one GGUF model of a directory without
    /// config.json; null for a checkpoint directory.
    /// </summary>
    /// <exception cref="CheckpointException">The path does not exist, or the directory holds several GGUF models.</exception>
    public static string? GgufModelOf(string path)
    {
        if (File.Exists(path)) return path;
        if (!Directory.Exists(path)) throw new CheckpointException(path, "checkpoint directory not found");
        return File.Exists(Path.Combine(path, "config.json")) ? null : FindInDirectory(path);
    }

    /// <summary>The one GGUF model of <paramref name="directory"/>, or null when it holds none.</summary>
    /// <exception cref="CheckpointException">It holds several; the message lists them.</exception>
    public static string? FindInDirectory(string directory)
    {
        var models = ModelsIn(directory);
        return models.Count switch
        {
            0 => null,
            1 => models[0],
            _ => throw new CheckpointException(directory, $"holds {models.Count} GGUF models ({List(models)}); pass one of the files"),
        };
    }

    /// <summary>
    /// The models whose file name, without <c>.gguf</c> and a split suffix, ends with <paramref name="tag"/> after a
    /// '-', '.' or '_' (case-insensitive), as llama.cpp's <c>-hf repo:tag</c> picks a quantization.
    /// </summary>
    public static IReadOnlyList<string> MatchTag(IReadOnlyList<string> models, string tag) =>
        models.Where(m =>
        {
            string name = Path.GetFileName(m);
            string stem = name[..^".gguf".Length];
            if (GgufModelFiles.FirstPartName(name) is not null) stem = stem[..^"-00001-of-00000".Length];
            if (!stem.EndsWith(tag, StringComparison.OrdinalIgnoreCase)) return false;
            return stem.Length == tag.Length || stem[^(tag.Length + 1)] is '-' or '.' or '_';
        }).ToList();

    /// <summary>File names, comma-separated, for messages.</summary>
    public static string List(IEnumerable<string> models) => string.Join(", ", models.Select(Path.GetFileName));
}
