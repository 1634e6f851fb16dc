using System.IO.Compression;
using Qwen2.Native.Text;

namespace Qwen2.Bench;

/// <summary>The Qwen2.5 tokenizer embedded in the bench, for synthesized checkpoints (which have none).</summary>
internal static class BenchTokenizer
{
    public static Qwen2Tokenizer Qwen25()
    {
        var assembly = typeof(BenchTokenizer).Assembly;
        using var gz = new GZipStream(assembly.GetManifestResourceStream("tokenizer/tokenizer.json.gz")!, CompressionMode.Decompress);
        using var json = new MemoryStream();
        gz.CopyTo(json);
        json.Position = 0;
        using var config = assembly.GetManifestResourceStream("tokenizer/tokenizer_config.json")!;
        return Qwen2Tokenizer.FromStreams(json, config, "the bench's embedded Qwen2.5 tokenizer");
    }
}
