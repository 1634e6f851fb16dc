using System.Text.Json;

namespace Qwen2.Native.Tests;

/// <summary>Paths to the checkpoints and golden files copied next to the test binaries.</summary>
public static class Fixtures
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string Model(string name) => Path.Combine(Root, "models", name);
    public static Golden Golden(string name) => Native.Tests.Golden.Load(Path.Combine(Root, "golden", name + ".json"));

    /// <summary>A fresh temporary directory, deleted when disposed.</summary>
    public static TempDir TempDir() => new();
}

public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "qwen2-tests-" + Guid.NewGuid().ToString("N"));
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}

/// <summary>Golden outputs of the independent PyTorch / transformers references.</summary>
public sealed record Golden(int[] Tokens, float[][] Logits, int[] Greedy, float[][] GreedyLogits)
{
    public static Golden Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var r = doc.RootElement;
        static float[][] Rows(JsonElement e) => e.EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        return new Golden(
            r.GetProperty("tokens").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            Rows(r.GetProperty("logits")),
            r.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            Rows(r.GetProperty("greedy_logits")));
    }
}
