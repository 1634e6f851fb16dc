using System.CommandLine;
using System.Text;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>qwen2 export-gguf: the file it writes, its progress lines, and a bad --type.</summary>
public class ExportGgufCommandTests
{
    [Fact]
    public void Bad_type_is_refused()
    {
        using var dir = Fixtures.TempDir();
        var (code, _, err) = RunCommand("--model", dir.Path, "--out", dir.File("x.gguf"), "--type", "q4");
        Assert.Equal(2, code);
        Assert.Contains("--type: unknown type \"q4\"", err);
    }

    [Fact]
    public void Cli_exports_and_reports()
    {
        using var dir = Fixtures.TempDir();
        SyntheticCheckpoint.Write(dir.Path, SyntheticShape.Tiny, WeightType.BF16);
        TinyChatModel.CopyTokenizer(dir.Path);
        var (code, stdout, err) = RunCommand("--model", dir.Path, "--out", dir.File("m.gguf"), "--type", "f32");
        Assert.True(code == 0, err);
        Assert.Contains("F32, 26 tensors, 151936 tokens", stdout);
        Assert.Contains("100%", err);
        Assert.Equal("GGUF", Encoding.ASCII.GetString(File.ReadAllBytes(dir.File("m.gguf")).AsSpan(0, 4)));
    }

    private static (int Code, string Out, string Err) RunCommand(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var cmd = ExportGgufCommand.Create(stdout, stderr);
        int code = cmd.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }
}
