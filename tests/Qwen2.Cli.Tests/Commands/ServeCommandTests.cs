using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>
/// qwen2 serve as a user runs it: a process that prints its address once ready, answers OpenAI requests, and exits 0
/// on SIGTERM; and its flags' usage errors.
/// </summary>
public sealed partial class ServeCommandTests : IDisposable
{
    private readonly TempDir _dir = Fixtures.TempDir();

    public ServeCommandTests()
    {
        SyntheticCheckpoint.Write(_dir.Path, SyntheticShape.Tiny, WeightType.BF16, seed: 3);
        TinyChatModel.CopyTokenizer(_dir.Path);
    }

    public void Dispose() => _dir.Dispose();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private const int SigTerm = 15;

    [Fact]
    public async Task ServesOnAFreePortAndStopsOnSigterm()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "qwen2.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "exec", dll, "serve", "--model", _dir.Path, "--port", "0", "--alias", "tiny", "--threads", "2" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            // stderr is awaited only on failure: it ends when the process does.
            if (line is null) Assert.Fail($"qwen2 serve exited before listening: {await stderr}");
            var m = System.Text.RegularExpressions.Regex.Match(line!, @"^listening on (http://127\.0\.0\.1:(\d+))$");
            Assert.True(m.Success, line);
            Assert.NotEqual("0", m.Groups[2].Value);
            using var http = new HttpClient { BaseAddress = new Uri(m.Groups[1].Value) };
            Assert.Equal("{\"status\":\"ok\"}", await http.GetStringAsync("/health"));
            var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement;
            Assert.Equal("tiny", models.GetProperty("data")[0].GetProperty("id").GetString());
            var reply = await http.PostAsync("/v1/chat/completions", new StringContent("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
            Assert.Equal(3, JsonDocument.Parse(await reply.Content.ReadAsStringAsync()).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            Assert.Equal(0, Kill(process.Id, SigTerm));
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (process.ExitCode != 0) Assert.Fail($"exit code {process.ExitCode}: {await stderr}");
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    [Theory]
    [InlineData("--port", "70000", "--port must be between 0 and 65535")]
    [InlineData("--host", "not-an-address", "--host")]
    [InlineData("--max-batch", "0", "--max-batch must be at least 1")]
    [InlineData("--context", "0", "--context must be at least 1")]
    [InlineData("--timeout", "-1", "--timeout must be positive")]
    public void BadFlagIsAUsageError(string flag, string value, string message)
    {
        var (code, _, err) = Cli.Run("serve", "--model", _dir.Path, flag, value);
        Assert.Equal(Program.UsageError, code);
        Assert.Contains(message, err);
    }
}
