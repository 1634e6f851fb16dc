using System.IO.Compression;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Text;

namespace Qwen2.Examples;

/// <summary>
/// What the examples run on when no model is given: a two-layer random-weight checkpoint with Qwen2's real vocabulary
/// (about 20 MB) and the real Qwen2.5 tokenizer, embedded in the example, so it runs from a fresh clone.
/// </summary>
internal static class TinyCheckpoint
{
    /// <summary>
    /// The checkpoint an example runs on: <paramref name="model"/> (a directory or cached hub id), else QWEN2_MODEL, else
    /// a tiny synthesized one in a temporary directory that disposing the result deletes.
    /// </summary>
    public static ExampleCheckpoint Open(string? model, string prefix)
    {
        model = model is { Length: > 0 } ? model : Environment.GetEnvironmentVariable(ModelLocator.ModelVariable);
        return model is { Length: > 0 } ? new ExampleCheckpoint(ModelLocator.Resolve(model), false) : new ExampleCheckpoint(Synthesize(prefix), true);
    }

    /// <summary>Writes the checkpoint into a new temporary directory named after <paramref name="prefix"/>.</summary>
    public static string Synthesize(string prefix)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        SyntheticCheckpoint.Write(dir, SyntheticShape.Tiny, WeightType.BF16, seed: 1);
        using (var gz = new GZipStream(Resource("tokenizer.json.gz"), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(dir, Qwen2Tokenizer.TokenizerJsonFile)))
            gz.CopyTo(file);
        using (var config = Resource("tokenizer_config.json"))
        using (var file = File.Create(Path.Combine(dir, Qwen2Tokenizer.TokenizerConfigFile)))
            config.CopyTo(file);
        return dir;
    }

    private static Stream Resource(string name) =>
        typeof(TinyCheckpoint).Assembly.GetManifestResourceStream("tokenizer/" + name)
        ?? throw new InvalidOperationException($"embedded resource tokenizer/{name} is missing; build the example from the repository");
}

/// <summary>A checkpoint directory, deleted on dispose when it was synthesized for the run.</summary>
internal sealed record ExampleCheckpoint(string Directory, bool Synthesized) : IDisposable
{
    /// <summary>The directory, and whether its weights are random.</summary>
    public override string ToString() => Synthesized ? $"{Directory} (synthesized, random weights)" : Directory;

    public void Dispose()
    {
        if (Synthesized && System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }
}
