using System.Globalization;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// Synthetic checkpoints kept under the user's cache directory (<c>$XDG_CACHE_HOME/qwen2managed</c>, else
/// <c>~/.cache/qwen2managed</c>) and reused, so <c>qwen2 demo</c>, <c>qwen2 bench</c> and the benchmarks write a
/// Qwen2-0.5B-shaped checkpoint once and share it.
/// </summary>
public static class SyntheticCheckpointCache
{
    /// <summary>Marker written last: a directory without it is an interrupted write and is written again.</summary>
    public const string CompleteMarker = ".complete";

    /// <summary>The folder the cached checkpoints live in.</summary>
    public static string Root
    {
        get
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "qwen2managed");
        }
    }

    /// <summary>Where the checkpoint of <paramref name="shape"/> and <paramref name="dtype"/> is kept, e.g. <c>demo-qwen2-0.5b-bf16</c>.</summary>
    public static string DirectoryFor(SyntheticShape shape, WeightType dtype)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return Path.Combine(Root, $"demo-{shape.Name}-{TensorSpec.HeaderName(dtype).ToLowerInvariant()}");
    }

    /// <summary>
    /// Returns a complete checkpoint directory of <paramref name="shape"/> and <paramref name="dtype"/> (seed 0),
    /// writing it first when it is missing or was not finished.
    /// </summary>
    /// <param name="shape">The architecture.</param>
    /// <param name="dtype">Element type of every tensor.</param>
    /// <param name="directory">Where to keep it; <c>null</c> means <see cref="DirectoryFor"/>.</param>
    /// <param name="log">Told whether the checkpoint is reused or written, and how long writing took.</param>
    /// <param name="beforeComplete">Adds files to a freshly written directory before it is marked complete (the CLI adds a tokenizer).</param>
    /// <exception cref="IOException">The directory cannot be written or its disk lacks the space.</exception>
    public static string GetOrCreate(SyntheticShape shape, WeightType dtype, string? directory = null, TextWriter? log = null, Action<string>? beforeComplete = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        string dir = directory ?? DirectoryFor(shape, dtype);
        string done = Path.Combine(dir, CompleteMarker);
        if (File.Exists(done))
        {
            log?.WriteLine($"reusing {dir}");
            return dir;
        }
        log?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"synthesizing {shape.Name} ({shape.ParameterCount / 1e6:F0}M parameters, {shape.WeightBytes(dtype) / 1e9:F2} GB) into {dir} ..."));
        var r = SyntheticCheckpoint.Write(dir, shape, dtype, seed: 0, overwrite: true);
        beforeComplete?.Invoke(dir);
        File.WriteAllText(done, "written by qwen2managed\n");
        log?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  written in {r.Elapsed.TotalSeconds:F1} s"));
        return dir;
    }
}
