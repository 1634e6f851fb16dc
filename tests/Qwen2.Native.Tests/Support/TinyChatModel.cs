using System.IO.Compression;
using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// A synthesized tiny checkpoint with the real Qwen2.5 tokenizer and vocabulary, shared by the tests of a class:
/// random weights, so its text means nothing, but every id it produces decodes.
/// </summary>
public class TinyChatModel : IDisposable
{
    private readonly TempDir _dir = Fixtures.TempDir();

    public TinyChatModel() : this(SyntheticShape.Tiny, "qwen2.5", seed: 11)
    {
    }

    /// <summary>A tiny checkpoint of <paramref name="shape"/> with the tokenizer and template of <paramref name="family"/>; <paramref name="prepare"/> may change its files before it loads.</summary>
    protected TinyChatModel(SyntheticShape shape, string family, ulong seed, Action<string>? prepare = null)
    {
        SyntheticCheckpoint.Write(_dir.Path, shape, WeightType.BF16, seed);
        CopyTokenizer(_dir.Path, family);
        prepare?.Invoke(_dir.Path);
        Model = Qwen2Model.Load(_dir.Path);
        Tokenizer = Qwen2Tokenizer.Load(_dir.Path);
        Pipeline = new Qwen2Pipeline(Model, Tokenizer);
    }

    public string Directory => _dir.Path;
    public Qwen2Model Model { get; }
    public Qwen2Tokenizer Tokenizer { get; }
    public Qwen2Pipeline Pipeline { get; }

    /// <summary>Writes a family's tokenizer.json and tokenizer_config.json (fixtures/tokenizer/FAMILY; Qwen2.5's by default) into <paramref name="directory"/>.</summary>
    public static void CopyTokenizer(string directory, string family = "qwen2.5")
    {
        string src = Path.Combine(Fixtures.Root, "tokenizer", family);
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(src, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(directory, "tokenizer.json")))
            gz.CopyTo(file);
        File.Copy(Path.Combine(src, "tokenizer_config.json"), Path.Combine(directory, "tokenizer_config.json"));
    }

    public void Dispose()
    {
        Model.Dispose();
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }
}
