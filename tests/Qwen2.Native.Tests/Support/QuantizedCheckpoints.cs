using System.Collections.Concurrent;
using Qwen2.Kernels;
using Qwen2.Native.Gguf;

namespace Qwen2.Native.Tests;

/// <summary>
/// Small BF16 checkpoints with the Qwen2.5 tokenizer, and their GGUF exports, written once per test run and shared by
/// the quantization tests: one whose rows are all whole 256-element super-blocks (real K-quants), one 896 wide (the
/// fallbacks of Qwen2-0.5B).
/// </summary>
internal static class QuantizedCheckpoints
{
    /// <summary>Hidden 256, 4 layers (use_more_bits picks layers 2 and 3), intermediate 512, tied.</summary>
    public static readonly SyntheticShape H256 = new("h256", 256, 4, 4, 2, 512, 151936, true);

    /// <summary>Hidden 896 as Qwen2-0.5B (14 heads of 64, 2 key-value heads), 2 layers, intermediate 1024, tied.</summary>
    public static readonly SyntheticShape H896 = new("h896", 896, 2, 14, 2, 1024, 151936, true);

    private static readonly TempDir Root = CreateRoot();
    private static readonly ConcurrentDictionary<string, Lazy<string>> Made = new();

    private static TempDir CreateRoot()
    {
        var root = new TempDir();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => root.Dispose();
        return root;
    }

    /// <summary>The checkpoint directory of <paramref name="shape"/>.</summary>
    public static string Checkpoint(SyntheticShape shape) => Once(shape.Name, () =>
    {
        string dir = Path.Combine(Root.Path, shape.Name);
        Directory.CreateDirectory(dir);
        SyntheticCheckpoint.Write(dir, shape, WeightType.BF16, seed: 3);
        TinyChatModel.CopyTokenizer(dir);
        return dir;
    });

    /// <summary><paramref name="shape"/>'s checkpoint exported by <see cref="GgufExporter"/> as <paramref name="type"/>.</summary>
    public static string Gguf(SyntheticShape shape, GgufFileType type) => Once($"{shape.Name}-{type}", () =>
    {
        string path = Path.Combine(Root.Path, $"{shape.Name}-{type}.gguf");
        GgufExporter.Export(Checkpoint(shape), path, type);
        return path;
    });

    private static string Once(string key, Func<string> make) => Made.GetOrAdd(key, _ => new Lazy<string>(make)).Value;
}
