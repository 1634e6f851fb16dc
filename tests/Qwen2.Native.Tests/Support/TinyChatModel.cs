using System.IO.Compression;
using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// A synthesized tiny checkpoint with the real Qwen2.5 tokenizer and vocabulary, shared by the tests of a class:
/// random weights, so its text means nothing, but every id it produces decodes.
/// </summary>
public sealed class TinyChatModel : IDisposable
{
    private readonly TempDir _dir = Fixtures.TempDir();

    public TinyChatModel()
    {
        SyntheticCheckpoint.Write(_dir.Path, SyntheticShape.Tiny, WeightType.BF16, seed: 11);
        CopyTokenizer(_dir.Path);
        Model = Qwen2Model.Load(_dir.Path);
        Tokenizer = Qwen2Tokenizer.Load(_dir.Path);
        Pipeline = new Qwen2Pipeline(Model, Tokenizer);
    }

    public string Directory => _dir.Path;
    public Qwen2Model Model { get; }
    public Qwen2Tokenizer Tokenizer { get; }
    public Qwen2Pipeline Pipeline { get; }

    /// <summary>Writes the Qwen2.5 tokenizer.json and tokenizer_config.json into <paramref name="directory"/>.</summary>
    public static void CopyTokenizer(string directory)
    {
        string src = Path.Combine(Fixtures.Root, "tokenizer", "qwen2.5");
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(src, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(directory, "tokenizer.json")))
            gz.CopyTo(file);
        File.Copy(Path.Combine(src, "tokenizer_config.json"), Path.Combine(directory, "tokenizer_config.json"));
    }

    public void Dispose()
    {
        Model.Dispose();
        _dir.Dispose();
    }
}
