using System.IO.Compression;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>qwen2 synth: the checkpoint and tokenizer it writes, and its option errors.</summary>
public class SynthCommandTests
{
    private static (int Code, string Out, string Err) Synth(params string[] args) => Cli.Run(["synth", .. args]);

    private static string AssetPath(string name) => Path.Combine(Fixtures.Root, "tokenizer", "qwen2.5", name);

    [Fact]
    public void CliWritesTheCheckpointAndTheTokenizerAssets()
    {
        using var dir = Fixtures.TempDir();
        string path = Path.Combine(dir.Path, "tiny");
        var (code, output, err) = Synth("--shape", "tiny", "--dtype", "f16", "--out", path, "--seed", "3");
        Assert.True(code == 0, err);
        Assert.Equal("", err);
        Assert.StartsWith($"wrote {path}: tiny F16, {SyntheticShape.Tiny.ParameterCount:N0} parameters, ", output);
        Assert.Single(output.TrimEnd().Split('\n'));

        byte[] expectedTokenizer;
        using (var gz = new GZipStream(File.OpenRead(AssetPath("tokenizer.json.gz")), CompressionMode.Decompress))
        using (var ms = new MemoryStream())
        {
            gz.CopyTo(ms);
            expectedTokenizer = ms.ToArray();
        }
        Assert.True(expectedTokenizer.Length > 1_000_000);
        Assert.True(expectedTokenizer.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(path, "tokenizer.json"))));
        Assert.Equal(File.ReadAllBytes(AssetPath("tokenizer_config.json")), File.ReadAllBytes(Path.Combine(path, "tokenizer_config.json")));

        // same bytes as the library with the same seed
        string lib = Path.Combine(dir.Path, "lib");
        SyntheticCheckpoint.Write(lib, SyntheticShape.Tiny, WeightType.F16, seed: 3);
        Assert.True(File.ReadAllBytes(Path.Combine(lib, "model.safetensors")).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(path, "model.safetensors"))));
    }

    [Theory]
    [InlineData("--shape", "qwen3-30b-a3b", "--shape", "qwen2-0.5b")]
    [InlineData("--dtype", "int8", "--dtype", "bf16")]
    public void CliNamesTheOptionOfAnUnknownValue(string option, string value, string expectedOption, string listed)
    {
        using var dir = Fixtures.TempDir();
        var args = new List<string> { "--shape", "tiny", "--out", Path.Combine(dir.Path, "x") };
        if (option == "--shape") args[1] = value;
        else args.AddRange([option, value]);
        var (code, output, err) = Synth(args.ToArray());
        Assert.Equal(Program.UsageError, code);
        Assert.Equal("", output);
        Assert.StartsWith($"error: {expectedOption}: ", err);
        Assert.Contains(value, err);
        Assert.Contains(listed, err);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "x")));
    }

    [Fact]
    public void CliRefusesANonEmptyDirectoryWithoutForce()
    {
        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("other"), "x");
        var (code, _, err) = Synth("--shape", "tiny", "--out", dir.Path);
        Assert.Equal(Program.UsageError, code);
        Assert.Contains("--force", err);
        Assert.Contains(dir.Path, err);
        Assert.False(File.Exists(dir.File("model.safetensors")));

        var (forced, _, err2) = Synth("--shape", "tiny", "--out", dir.Path, "--force");
        Assert.True(forced == 0, err2);
        Assert.True(File.Exists(dir.File("tokenizer.json")));
    }

    [Fact]
    public void CliHelpListsTheShapesAndDtypes()
    {
        var (code, output, _) = Synth("--help");
        Assert.Equal(0, code);
        foreach (var s in SyntheticShape.All) Assert.Contains(s.Name, output);
        Assert.Contains("bf16|f16|f32", output);
        Assert.Contains("--seed", output);
        Assert.Contains("--force", output);
    }
}
