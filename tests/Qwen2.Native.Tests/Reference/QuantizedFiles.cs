using System.Collections.Concurrent;
using Qwen2.Kernels;
using Qwen2.Native.Gguf;
using Qwen2.Native.Tests.Tokenizer;
using Qwen2.Reference;

namespace Qwen2.Native.Tests.Reference;

/// <summary>
/// Small synthetic Qwen2 checkpoints exported to F32 GGUF and quantized by llama.cpp into every mix, kept under
/// <c>$XDG_CACHE_HOME/qwen2managed/llama-quantized</c> (or <c>~/.cache</c>) so that reruns only read them. Every file
/// is written to a partial name and renamed, so a concurrent or interrupted run never sees half a file.
/// </summary>
public static class QuantizedFiles
{
    // Part of every cached name: bump it when the shapes, seeds, tokenizer or export change.
    private const string Version = "v1";
    private static readonly ConcurrentDictionary<string, Lazy<string>> Made = new(StringComparer.Ordinal);

    /// <summary>Rows that are multiples of 256 (real K-quants), an untied output matrix.</summary>
    public static SyntheticShape Wide256 { get; } = new("quant-256", 256, 2, 4, 2, 768, 1024, false, 4096);

    /// <summary>Qwen2-0.5B's widths (896 is not a multiple of 256: llama.cpp's fallbacks), tied, two layers.</summary>
    public static SyntheticShape Wide896 { get; } = new("quant-896", 896, 2, 14, 2, 4864, 1024, true, 4096);

    /// <summary>The shapes by name.</summary>
    public static SyntheticShape Shape(string name) => name == Wide256.Name ? Wide256 : name == Wide896.Name ? Wide896
        : throw new ArgumentException($"unknown test shape {name}", nameof(name));

    /// <summary>Where the files live.</summary>
    public static string Root
    {
        get
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "qwen2managed", "llama-quantized");
        }
    }

    /// <summary>The F32 GGUF export of the synthetic checkpoint of <paramref name="shape"/>.</summary>
    public static string F32(SyntheticShape shape, ulong seed = 11) => Once(Stem(shape, seed) + "-f32.gguf", path =>
    {
        string dir = Path.Combine(Root, $"{Stem(shape, seed)}-checkpoint-{Guid.NewGuid():N}");
        try
        {
            SyntheticCheckpoint.Write(dir, shape, WeightType.F32, seed);
            // A small byte-level BPE vocabulary: the export needs a tokenizer, and the ids beyond it become padding.
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), TinyTokenizerJson.Build().ToJsonString());
            GgufExporter.Export(dir, path, GgufFileType.F32);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    });

    /// <summary>The F32 export quantized by llama.cpp into <paramref name="mix"/> (a name of <see cref="LlamaCpp.Mixes"/>).</summary>
    public static string Quantized(SyntheticShape shape, string mix, ulong seed = 11)
    {
        string source = F32(shape, seed);
        return Once($"{Stem(shape, seed)}-{mix}.gguf", path => LlamaCpp.Quantize(source, path, mix));
    }

    /// <summary>A fixed token sequence over the whole vocabulary.</summary>
    public static int[] Tokens(SyntheticShape shape, int count, int seed = 3)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(shape.VocabSize)).ToArray();
    }

    private static string Stem(SyntheticShape s, ulong seed) =>
        $"{Version}-{s.Name}-h{s.HiddenSize}-l{s.NumHiddenLayers}-a{s.NumAttentionHeads}x{s.NumKeyValueHeads}-i{s.IntermediateSize}-v{s.VocabSize}-{(s.TieWordEmbeddings ? "tied" : "untied")}-s{seed}";

    private static string Once(string name, Action<string> make) => Made.GetOrAdd(name, n => new Lazy<string>(() =>
    {
        Directory.CreateDirectory(Root);
        string path = Path.Combine(Root, n);
        if (File.Exists(path)) return path;
        string partial = path + "." + Guid.NewGuid().ToString("N")[..8] + ".partial";
        try
        {
            make(partial);
            File.Move(partial, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(partial)) File.Delete(partial);
        }
        return path;
    })).Value;
}
