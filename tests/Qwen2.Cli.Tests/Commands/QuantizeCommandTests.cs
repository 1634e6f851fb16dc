using System.Text;
using System.Text.Json;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>qwen2 quantize (arguments, errors naming them, the progress bar, the file) and --quantize on a loading verb.</summary>
public class QuantizeCommandTests
{
    [Fact]
    public void Quantize_writes_the_file_with_a_progress_bar()
    {
        using var dir = TinyCheckpoint();
        var (code, stdout, err) = Cli.Run("quantize", "-m", dir.Path, "--type", "q4_k_m", "--out", dir.File("m.gguf"));
        Assert.True(code == 0, err);
        Assert.Contains("Q4_K_M, 26 tensors, 151936 tokens", stdout);
        // Redirected stderr: a bar line per 10 %, ending full.
        Assert.Contains("[##############################] 100%", err);
        Assert.Contains("[###...........................]  10%", err);
        byte[] file = File.ReadAllBytes(dir.File("m.gguf"));
        Assert.Equal("GGUF", Encoding.ASCII.GetString(file, 0, 4));
        Assert.Equal(3u, BitConverter.ToUInt32(file, 4));
        Assert.Equal(26ul, BitConverter.ToUInt64(file, 8));
        Assert.False(File.Exists(dir.File("m.gguf.partial")));
    }

    [Theory]
    [InlineData("q4", "--type: unknown type \"q4\"")]
    [InlineData("f16", "--type: unknown type \"f16\"")]
    public void Unknown_types_are_refused_naming_the_option(string type, string message)
    {
        using var dir = Fixtures.TempDir();
        var (code, _, err) = Cli.Run("quantize", "-m", dir.Path, "--type", type, "--out", dir.File("x.gguf"));
        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public void Missing_arguments_and_a_directory_as_output_are_named()
    {
        using var dir = Fixtures.TempDir();
        var (c1, _, e1) = Cli.Run("quantize", "-m", dir.Path, "--out", dir.File("x.gguf"));
        Assert.NotEqual(0, c1);
        Assert.Contains("--type", e1);
        var (c2, _, e2) = Cli.Run("quantize", "-m", dir.Path, "--type", "q8_0");
        Assert.NotEqual(0, c2);
        Assert.Contains("--out", e2);
        var (c3, _, e3) = Cli.Run("quantize", "-m", dir.Path, "--type", "q8_0", "--out", dir.Path);
        Assert.Equal(2, c3);
        Assert.Contains("--out: '", e3);
    }

    [Fact]
    public void A_row_no_block_fits_is_named()
    {
        // tiny's ffn_down rows are 176 wide: not whole Q8_0 blocks, and llama.cpp has no fallback for Q8_0 either.
        using var dir = TinyCheckpoint();
        var (code, _, err) = Cli.Run("quantize", "-m", dir.Path, "--type", "q8_0", "--out", dir.File("x.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("blk.0.ffn_down.weight", err);
        Assert.False(File.Exists(dir.File("x.gguf")));
    }

    [Fact]
    public void Logits_with_quantize_are_close_to_the_float_ones()
    {
        string model = Fixtures.Model("tiny-bf16");
        var (c1, floats, e1) = Cli.Run("logits", "--model", model, "--tokens", "1,17,42");
        // tiny's 64-wide rows make q6_k fall back to Q8_0 (its 176-wide ffn_down stays BF16): 8-bit weights.
        var (c2, quantized, e2) = Cli.Run("logits", "--model", model, "--tokens", "1,17,42", "--quantize", "q6_k");
        Assert.True(c1 == 0, e1);
        Assert.True(c2 == 0, e2);
        float[] a = Flat(floats), b = Flat(quantized);
        Assert.Equal(a.Length, b.Length);
        float scale = a.Max(MathF.Abs), worst = a.Zip(b, (x, y) => MathF.Abs(x - y)).Max();
        Assert.True(worst > 0, "--quantize changed nothing");
        Assert.True(worst < 0.05f * scale, $"quantized logits differ by {worst} (max |logit| {scale})");
    }

    [Fact]
    public void Bad_quantize_values_are_named()
    {
        string model = Fixtures.Model("tiny-bf16");
        var (c1, _, e1) = Cli.Run("logits", "--model", model, "--tokens", "1", "--quantize", "q4_k_m");
        Assert.Equal(2, c1);
        Assert.Contains("--quantize: unknown type \"q4_k_m\"", e1);
        var (c2, _, e2) = Cli.Run("logits", "--model", model, "--tokens", "1", "--quantize", "q8_0");
        Assert.Equal(2, c2);
        Assert.Contains("blk.0.ffn_down.weight", e2);
    }

    /// <summary>The tiny shape in BF16 with the Qwen2.5 tokenizer (a GGUF file carries the vocabulary).</summary>
    [Fact]
    public void A_gguf_input_is_quantized_and_requantizing_needs_the_flag()
    {
        using var dir = TinyCheckpoint();
        var (c0, _, e0) = Cli.Run("export-gguf", "-m", dir.Path, "--type", "f32", "--out", dir.File("f32.gguf"));
        Assert.True(c0 == 0, e0);
        // From the F32 GGUF: byte for byte the file quantizing the checkpoint writes (metadata carried over, general.name included).
        var (c1, out1, e1) = Cli.Run("quantize", "-m", dir.File("f32.gguf"), "--type", "q4_k_m", "--out", dir.File("a.gguf"));
        Assert.True(c1 == 0, e1);
        Assert.Contains("Q4_K_M, 26 tensors, 151936 tokens", out1);
        var (c2, _, e2) = Cli.Run("quantize", "-m", dir.Path, "--type", "q4_k_m", "--out", dir.File("b.gguf"));
        Assert.True(c2 == 0, e2);
        Assert.Equal(File.ReadAllBytes(dir.File("b.gguf")), File.ReadAllBytes(dir.File("a.gguf")));

        // Its Q5_0 matrices (q4_k_m's fallback for 64-wide rows) would become Q5_1 in q5_k_m.
        var (c3, _, e3) = Cli.Run("quantize", "-m", dir.File("a.gguf"), "--type", "q5_k_m", "--out", dir.File("c.gguf"));
        Assert.Equal(2, c3);
        Assert.Contains("blk.0.attn_q.weight", e3);
        Assert.Contains("Q5_0", e3);
        Assert.Contains("--allow-requantize", e3);
        Assert.False(File.Exists(dir.File("c.gguf")));
        var (c4, out4, e4) = Cli.Run("quantize", "-m", dir.File("a.gguf"), "--type", "q5_k_m", "--out", dir.File("c.gguf"), "--allow-requantize");
        Assert.True(c4 == 0, e4);
        Assert.Contains("Q5_K_M, 26 tensors, 151936 tokens", out4);
        // The requantized file's tokenizer (from its metadata) gives Hugging Face's ids.
        var (c5, ids5, e5) = Cli.Run("tokenize", "-m", dir.File("c.gguf"), "--text", "<|im_start|>Hello, 世界<|im_end|>");
        var (c6, ids6, e6) = Cli.Run("tokenize", "-m", dir.Path, "--text", "<|im_start|>Hello, 世界<|im_end|>");
        Assert.True(c5 == 0 && c6 == 0, e5 + e6);
        Assert.Equal(ids6, ids5);
        Assert.Contains("151644", ids5); // <|im_start|>
    }

    private static TempDir TinyCheckpoint()
    {
        var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16);
        TinyChatModel.CopyTokenizer(dir.Path);
        return dir;
    }

    private static float[] Flat(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("logits").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetSingle())).ToArray();
    }
}
