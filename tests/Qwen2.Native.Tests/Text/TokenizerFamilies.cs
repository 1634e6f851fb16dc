using System.IO.Compression;
using Qwen2.Native.Text;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Qwen2.Native.Tests.Tokenizer;

/// <summary>Our tokenizer and Hugging Face's (the Rust library through Tokenizers.DotNet) for each Qwen family, loaded once.</summary>
public static class TokenizerFamilies
{
    public static readonly string[] Names = ["qwen2", "qwen2.5", "qwen3"];
    public static TheoryData<string> All => new(Names);

    private static readonly Dictionary<string, Lazy<Qwen2Tokenizer>> Ours = Names.ToDictionary(n => n, n => new Lazy<Qwen2Tokenizer>(() => Qwen2Tokenizer.Load(Dir(n))));
    private static readonly Dictionary<string, Lazy<Oracle>> Hf = Names.ToDictionary(n => n, n => new Lazy<Oracle>(() => new Oracle(PlainJson(n))));

    public static string Dir(string family) => Path.Combine(Fixtures.Root, "tokenizer", family);
    public static Qwen2Tokenizer Tokenizer(string family) => Ours[family].Value;
    public static Oracle Reference(string family) => Hf[family].Value;

    /// <summary>The Rust library reads only a plain tokenizer.json path, so un-gzip the fixture next to the test binaries.</summary>
    private static string PlainJson(string family)
    {
        string target = Path.Combine(AppContext.BaseDirectory, "hf-plain", family, "tokenizer.json");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Dir(family), "tokenizer.json.gz")), CompressionMode.Decompress);
        using (var output = File.Create(target)) gz.CopyTo(output);
        return target;
    }
}

/// <summary>Hugging Face's tokenizer; calls are serialized because the native handle's thread safety is not documented.</summary>
public sealed class Oracle(string tokenizerJsonPath)
{
    private readonly HfTokenizer _hf = new(vocabPath: tokenizerJsonPath);
    private readonly Lock _lock = new();

    public int[] Encode(string text)
    {
        lock (_lock) return _hf.Encode(text).Select(x => checked((int)x)).ToArray();
    }

    /// <summary>HF decode; this binding always skips tokens flagged special.</summary>
    public string DecodeSkippingSpecial(int[] ids)
    {
        lock (_lock) return _hf.Decode(ids.Select(x => checked((uint)x)).ToArray());
    }
}
