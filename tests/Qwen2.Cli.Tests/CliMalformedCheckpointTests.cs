using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary><c>qwen2 info</c> and <c>qwen2 logits</c> on malformed or broken checkpoints: one <c>error:</c> line, exit code 2, no stack trace.</summary>
public sealed class CliMalformedCheckpointTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var command in new[] { "info", "logits" })
            foreach (var breakage in new[] { "absurd header length", "metadata of the wrong type", "control characters in a tensor name", "invalid JSON header", "huge layer count", "overflowing shape" })
                data.Add(command, breakage);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MalformedCheckpoint_OneErrorLine_Exit2(string command, string breakage)
    {
        using var dir = CopyTinyF32();
        string weights = dir.File(CheckpointFiles.SingleFile);
        switch (breakage)
        {
            case "absurd header length":
                var bytes = File.ReadAllBytes(weights);
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 63);
                File.WriteAllBytes(weights, bytes);
                break;
            case "metadata of the wrong type":
                WriteHeader(weights, "{\"__metadata__\": {\"format\": 1}, \"t\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}");
                break;
            case "control characters in a tensor name":
                // the name reaches the message; a newline or an escape sequence must not split or colour the error line
                WriteHeader(weights, "{\"evil\\nname\\u001b[31m\\r\": {\"dtype\": \"Q4\", \"shape\": [4], \"data_offsets\": [0, 16]}}");
                break;
            case "invalid JSON header":
                WriteHeader(weights, "{\"t\": {\"dtype\": \"F32\",, }}");
                break;
            case "huge layer count":
                var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!;
                config["num_hidden_layers"] = int.MaxValue;
                File.WriteAllText(dir.File("config.json"), config.ToJsonString());
                break;
            default:
                WriteHeader(weights, "{\"t\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 16]}}");
                break;
        }
        string[] args = command == "info" ? ["info", "--model", dir.Path] : ["logits", "--model", dir.Path, "--tokens", "1,2"];

        var (code, stdout, stderr) = Cli.Run(args);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(dir.Path, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", stderr, StringComparison.Ordinal);
        Assert.False(stderr.TrimEnd('\n', '\r').Any(char.IsControl), $"control characters in: {stderr}");
    }

    [Theory]
    [InlineData("info", false)]
    [InlineData("logits", false)]
    [InlineData("info", true)]
    [InlineData("logits", true)]
    public void Cli_BrokenCheckpoint_OneErrorLine_Exit2(string command, bool badString)
    {
        using var dir = CopyTinyF32();
        string weights = dir.File(CheckpointFiles.SingleFile);
        string lastTensor = LastTensor(weights);
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes.AsSpan(0, bytes.Length - 100).ToArray());
        if (badString)
        {
            // a tensor name that System.Text.Json cannot read as a string (it would throw InvalidOperationException)
            lastTensor = "header";
            WriteHeader(weights, "{\"t\\ud800\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}");
        }
        string[] args = command == "info" ? ["info", "--model", dir.Path] : ["logits", "--model", dir.Path, "--tokens", "1,2"];

        var (line, err) = RunFailing(args);
        Assert.Contains(weights, line, StringComparison.Ordinal);
        Assert.Contains($"'{lastTensor}'", line, StringComparison.Ordinal);
        Assert.Contains(badString ? "invalid string" : "lie outside", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("info")]
    [InlineData("logits")]
    public void Cli_BadConfig_OneErrorLine_Exit2(string command)
    {
        using var dir = CopyTinyF32();
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!;
        config["model_type"] = "llama";
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        string[] args = command == "info" ? ["info", "--model", dir.Path] : ["logits", "--model", dir.Path, "--tokens", "1,2"];

        var (line, _) = RunFailing(args);
        Assert.Contains(dir.File("config.json"), line, StringComparison.Ordinal);
        Assert.Contains("model_type", line, StringComparison.Ordinal);
    }

    // Runs the command and holds it to the CLI's error contract: exit code 2, nothing on stdout, one "error: " line on
    // stderr and no stack trace. Returns that line and the whole of stderr.
    private static (string Line, string Stderr) RunFailing(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);

        string err = stderr.ToString();
        Assert.Equal(2, code);
        Assert.Equal("", stdout.ToString());
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        return (lines[0], err);
    }

    private static TempDir CopyTinyF32()
    {
        var dir = Fixtures.TempDir();
        foreach (var f in Directory.GetFiles(Fixtures.Model("tiny-f32"))) File.Copy(f, dir.File(Path.GetFileName(f)));
        return dir;
    }

    /// <summary>The tensor whose data comes last in a safetensors file (the one a truncation cuts into).</summary>
    private static string LastTensor(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, n));
        return doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__")
            .MaxBy(p => p.Value.GetProperty("data_offsets")[0].GetInt64()).Name;
    }

    private static void WriteHeader(string path, string header)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        File.WriteAllBytes(path, file);
    }
}
