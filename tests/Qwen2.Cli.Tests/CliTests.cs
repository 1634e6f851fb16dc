using System.Text.Json;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>The qwen2 command: output format, parity through the CLI, exit codes.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float worst = 0;
        for (int i = 0; i < a.Length; i++) worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
        return worst;
    }

    private static float[][] ParseLogits(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("logits").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(v => float.Parse(v.GetRawText(), System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToArray();
    }

    [Theory]
    [InlineData("untied-f16-mha", false)]
    [InlineData("untied-f16-mha", true)]
    [InlineData("sliding-f32", true)]
    [InlineData("sharded-bf16", false)]
    public void LogitsMatchTheReference(string name, bool incremental)
    {
        var golden = Fixtures.Golden(name);
        var args = new List<string> { "logits", "--model", Fixtures.Model(name), "--tokens", string.Join(",", golden.Tokens) };
        if (incremental) args.Add("--incremental");
        var (code, output, err) = Run(args.ToArray());
        Assert.True(code == 0, err);
        var rows = ParseLogits(output);
        Assert.Equal(golden.Tokens.Length, rows.Length);
        for (int p = 0; p < rows.Length; p++)
            Assert.True(MaxAbsDiff(rows[p], golden.Logits[p]) <= 1e-4f, $"position {p}");
    }

    [Fact]
    public void FloatsRoundTripExactlyAndThreadsDoNotChangeThem()
    {
        var (c1, one, _) = Run("logits", "--model", Fixtures.Model("tiny-bf16"), "--tokens", "1,17,42", "--threads", "1");
        var (c2, two, _) = Run("logits", "--model", Fixtures.Model("tiny-bf16"), "--tokens", "1,17,42", "--threads", "2");
        Assert.Equal(0, c1);
        Assert.Equal(0, c2);
        Assert.Equal(one, two);
        using var model = Qwen2Model.Load(Fixtures.Model("tiny-bf16"));
        var direct = model.Forward([1, 17, 42]);
        var parsed = ParseLogits(one);
        for (int r = 0; r < 3; r++) Assert.Equal(direct[r].ToArray(), parsed[r]); // parses back to the same float32
    }

    [Fact]
    public void CpuPrintsTheKernelPathAndTheRuntime()
    {
        var (code, stdout, stderr) = Run("cpu");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Contains($"kernels         {Qwen2.Kernels.IsaSupport.Best}\n", stdout.ReplaceLineEndings("\n"));
        Assert.Contains($"Vector512       {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}", stdout);
        Assert.Contains("runtime         JIT,", stdout); // the tests run on the JIT; tools/aot/check.sh checks the AOT binary says "native AOT"
        Assert.Contains("NFC             works", stdout);
    }

    [Fact]
    public void InfoSummarizesConfigAndTensors()
    {
        var (code, output, _) = Run("info", "--model", Fixtures.Model("sharded-bf16"));
        Assert.Equal(0, code);
        Assert.Contains("layers          3", output);
        Assert.Contains("39 in 8 file(s)", output);
        Assert.Contains("lm_head.weight", output);
        Assert.Contains("tied lm_head: False", output);
    }

    [Theory]
    [InlineData("1,x,3", "not an integer")]
    [InlineData("1,600", "0 to 511")]
    [InlineData("-4", "-4")]
    public void BadTokensExitWithCode2AndAClearMessage(string tokens, string expected)
    {
        var (code, output, err) = Run("logits", "--model", Fixtures.Model("tiny-f32"), "--tokens", tokens);
        Assert.Equal(Program.UsageError, code);
        Assert.Equal("", output);
        Assert.StartsWith("error: ", err);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void MissingModelDirectoryExitsWithCode2()
    {
        var (code, _, err) = Run("info", "--model", "/nonexistent/qwen2-checkpoint");
        Assert.Equal(Program.UsageError, code);
        Assert.Contains("/nonexistent/qwen2-checkpoint", err);
    }
}
