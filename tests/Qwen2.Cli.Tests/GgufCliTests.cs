using System.Text.Json;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Gguf;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>A tiny F32 checkpoint with the Qwen2.5 tokenizer and its F32 GGUF export, shared by <see cref="GgufCliTests"/>.</summary>
public sealed class TinyGgufPair : IDisposable
{
    private readonly TempDir _dir = Fixtures.TempDir();

    public TinyGgufPair()
    {
        Directory.CreateDirectory(Checkpoint);
        SyntheticCheckpoint.Write(Checkpoint, SyntheticShape.Tiny, WeightType.F32, seed: 21);
        TinyChatModel.CopyTokenizer(Checkpoint);
        GgufExporter.Export(Checkpoint, Gguf, GgufFileType.F32);
    }

    public string Checkpoint => Path.Combine(_dir.Path, "ckpt");
    public string Gguf => Path.Combine(_dir.Path, "tiny-f32.gguf");

    public void Dispose() => _dir.Dispose();
}

/// <summary>The verbs take a .gguf file and print what they print for the checkpoint it was exported from.</summary>
public sealed class GgufCliTests(TinyGgufPair pair) : IClassFixture<TinyGgufPair>
{
    private static (int Code, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private (string Dir, string Gguf) Both(params string[] args)
    {
        var a = Run([.. args, "--model", pair.Checkpoint]);
        var b = Run([.. args, "--model", pair.Gguf]);
        Assert.True(a.Code == 0, a.Err);
        Assert.True(b.Code == 0, b.Err);
        return (a.Out, b.Out);
    }

    [Fact]
    public void Logits_are_the_checkpoints()
    {
        var (dir, gguf) = Both("logits", "--tokens", "1,17,42,151644");
        Assert.Equal(dir, gguf);
        Assert.StartsWith("{\"logits\"", gguf);
    }

    [Fact]
    public void Generate_ids_are_the_checkpoints()
    {
        var (dir, gguf) = Both("generate", "--tokens", "1,17,42", "-t", "0", "-n", "6", "-o", "ids", "--ignore-eos");
        Assert.Equal(dir, gguf);
        Assert.Equal(6, JsonSerializer.Deserialize<int[]>(gguf)!.Length);
    }

    [Fact]
    public void Generate_text_runs_the_chat_template_from_the_metadata()
    {
        var (dir, gguf) = Both("generate", "-p", "Hello", "-t", "0", "-n", "4", "-o", "ids", "--ignore-eos");
        Assert.Equal(dir, gguf);
    }

    [Fact]
    public void Tokenize_json_in_gives_the_checkpoints_ids()
    {
        using var tmp = Fixtures.TempDir();
        string input = tmp.File("in.json");
        File.WriteAllText(input, JsonSerializer.Serialize(new[] { "Hello world", "<|im_start|>user\nHi<|im_end|>", "中文 😀 'll" }));
        var (dir, gguf) = Both("tokenize", "--json-in", input);
        Assert.Equal(dir, gguf);
    }

    [Fact]
    public void Info_prints_the_gguf_type_counts()
    {
        var (code, output, err) = Run("info", "--model", pair.Gguf);
        Assert.True(code == 0, err);
        Assert.Contains("qwen2 (GGUF F32)", output);
        Assert.Contains("F32           26 tensors", output);
        Assert.Contains("blk.0.attn_q.weight", output);
        Assert.DoesNotContain("blk.1.attn_q.weight", output);
    }

    [Fact]
    public void Chat_runs_on_a_gguf_file()
    {
        var (code, output, err) = Cli.RunWithInput("hello\n/exit\n", "chat", "-m", pair.Gguf, "-n", "3", "-t", "0", "--ignore-eos");
        Assert.True(code == 0, err);
        Assert.False(string.IsNullOrEmpty(output + err));
    }

    [Fact]
    public void Bench_json_runs_on_a_gguf_file()
    {
        var (code, output, err) = Run("bench", "--model", pair.Gguf, "--prompt-tokens", "4", "--gen-tokens", "2", "--bandwidth-mib", "8", "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(pair.Gguf, doc.RootElement.GetProperty("model").GetString());
        Assert.True(doc.RootElement.GetProperty("decode_tokens_per_s").GetDouble() > 0);
    }

    [Fact]
    public void A_directory_of_several_gguf_files_is_an_error_listing_them()
    {
        using var tmp = Fixtures.TempDir();
        File.Copy(pair.Gguf, tmp.File("a-q8_0.gguf"));
        File.Copy(pair.Gguf, tmp.File("a-f32.gguf"));
        var (code, _, err) = Run("logits", "--model", tmp.Path, "--tokens", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("a-f32.gguf, a-q8_0.gguf", err);
    }
}
