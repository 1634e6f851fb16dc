using System.CommandLine;
using System.Text.Json;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>qwen2 bench: the JSON report's fields and their consistency, the table, and option errors. Timings are never asserted.</summary>
public class BenchCommandTests(TinySynthCheckpoint tiny) : IClassFixture<TinySynthCheckpoint>
{
    // The verb is run through its own Command, so the tests do not depend on how Program wires it.
    private static (int Code, string Out, string Err) Bench(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var root = new RootCommand { BenchCommand.Create(stdout, stderr) };
        int code = root.Parse(["bench", .. args]).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    // Small enough to run in well under a second; the probe's 8 MiB may sit in cache, which only the value shows.
    private string[] TinyArgs(params string[] more) =>
        ["--model", tiny.Path, "--prompt-tokens", "5", "--gen-tokens", "3", "--bandwidth-mib", "8", .. more];

    [Fact]
    public void JsonHasEveryFieldPositiveAndConsistent()
    {
        var (code, output, err) = Bench(TinyArgs("--json", "--threads", "2", "--repeat", "3"));
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;

        Assert.Equal(tiny.Path, r.GetProperty("model").GetString());
        Assert.Equal("bfloat16", r.GetProperty("dtype").GetString());
        Assert.Equal(IsaSupport.Best.ToString(), r.GetProperty("isa").GetString());
        Assert.Equal(2, r.GetProperty("threads").GetInt32());
        Assert.Equal(Environment.ProcessorCount, r.GetProperty("processor_count").GetInt32());
        Assert.Equal(5, r.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(3, r.GetProperty("gen_tokens").GetInt32());
        Assert.Equal(3, r.GetProperty("repeat").GetInt32());
        var shape = SyntheticShape.Tiny;
        Assert.Equal(shape.NumHiddenLayers, r.GetProperty("layers").GetInt32());
        Assert.Equal(shape.HiddenSize, r.GetProperty("hidden_size").GetInt32());
        Assert.Equal(shape.IntermediateSize, r.GetProperty("intermediate_size").GetInt32());
        Assert.Equal(shape.VocabSize, r.GetProperty("vocab_size").GetInt32());
        Assert.Equal(shape.WeightBytes(WeightType.BF16), r.GetProperty("weight_bytes").GetInt64());
        Assert.Equal(8L << 20, r.GetProperty("bandwidth_buffer_bytes").GetInt64());
        Assert.Equal(MemoryBandwidth.StreamsPerThread, r.GetProperty("bandwidth_streams_per_thread").GetInt32());

        string[] positive =
        [
            "load_ms", "prefill_tokens_per_s", "prefill_tokens_per_s_min", "prefill_tokens_per_s_max",
            "decode_tokens_per_s", "decode_tokens_per_s_min", "decode_tokens_per_s_max",
            "decode_gb_per_s", "read_bandwidth_gb_per_s", "bandwidth_fraction",
        ];
        foreach (string name in positive)
        {
            double v = r.GetProperty(name).GetDouble();
            Assert.True(double.IsFinite(v) && v > 0, $"{name} is {v}");
        }

        double D(string name) => r.GetProperty(name).GetDouble();
        Assert.InRange(D("prefill_tokens_per_s"), D("prefill_tokens_per_s_min"), D("prefill_tokens_per_s_max"));
        Assert.InRange(D("decode_tokens_per_s"), D("decode_tokens_per_s_min"), D("decode_tokens_per_s_max"));
        AssertClose(r.GetProperty("weight_bytes").GetInt64() * D("decode_tokens_per_s") / 1e9, D("decode_gb_per_s"));
        AssertClose(D("decode_gb_per_s") / D("read_bandwidth_gb_per_s"), D("bandwidth_fraction"));
    }

    [Fact]
    public void BatchJsonReportsEachSizeWithConsistentMemory()
    {
        var (code, output, err) = Bench(TinyArgs("--json", "--threads", "2", "--repeat", "2", "--batch", "1,3,2"));
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var batches = doc.RootElement.GetProperty("batches").EnumerateArray().ToArray();
        Assert.Equal([1, 3, 2], batches.Select(b => b.GetProperty("batch").GetInt32()));
        long tokenBytes = 2L * SyntheticShape.Tiny.NumHiddenLayers * SyntheticShape.Tiny.NumKeyValueHeads * SyntheticShape.Tiny.HeadDim * sizeof(float);
        foreach (var b in batches)
        {
            int size = b.GetProperty("batch").GetInt32();
            var prompts = b.GetProperty("prompt_tokens").EnumerateArray().Select(p => p.GetInt32()).ToArray();
            Assert.Equal(size, prompts.Length);
            Assert.All(prompts, p => Assert.True(p >= 1));
            double D(string name) => b.GetProperty(name).GetDouble();
            long L(string name) => b.GetProperty(name).GetInt64();
            foreach (var name in new[] { "prefill_tokens_per_s", "decode_tokens_per_s", "per_sequence_tokens_per_s", "weight_gb_per_s", "mat_mul_gflop_per_s", "speedup_over_batch1" })
                Assert.True(D(name) > 0, $"batch {size}: {name} is {D(name)}");
            Assert.InRange(D("decode_tokens_per_s"), D("decode_tokens_per_s_min"), D("decode_tokens_per_s_max"));
            AssertClose(D("decode_tokens_per_s") / size, D("per_sequence_tokens_per_s"));
            // Every prompt plus the timed steps of the last run stay in the cache.
            Assert.Equal(prompts.Sum() + size * 3L, L("kv_tokens_held"));
            Assert.Equal(L("kv_tokens_held") * tokenBytes, L("kv_exact_bytes"));
            int block = b.GetProperty("kv_block_size").GetInt32();
            Assert.Equal(prompts.Sum(p => (p + 3 + block - 1) / block) * block * tokenBytes, L("kv_paged_bytes"));
            Assert.Equal(size * (prompts.Max() + 3L) * tokenBytes, L("kv_padded_bytes"));
        }
        Assert.Equal(1.0, batches[0].GetProperty("speedup_over_batch1").GetDouble());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("2,x")]
    [InlineData("4,,8")]
    public void BadBatchSizesAreNamed(string value)
    {
        var (code, output, err) = Bench("--model", tiny.Path, "--batch", value);
        Assert.Equal(Program.UsageError, code);
        Assert.Equal("", output);
        Assert.Contains("--batch", err);
    }

    [Fact]
    public void TablePrintsEveryMeasure()
    {
        var (code, output, err) = Bench(TinyArgs("--threads", "1"));
        Assert.True(code == 0, err);
        Assert.Contains("1 threads", output);
        Assert.Contains($"{IsaSupport.Best} kernels", output);
        Assert.Contains("prefill, 5 tokens", output);
        Assert.Contains("decode, 3 greedy steps", output);
        Assert.Contains("decode weight reads (GB/s)", output);
        Assert.Contains("read bandwidth, 1 threads x 8 streams, 8 MiB", output);
        Assert.Contains("decode / read bandwidth", output);
    }

    [Theory]
    [InlineData("--prompt-tokens", "0")]
    [InlineData("--gen-tokens", "-1")]
    [InlineData("--threads", "0")]
    [InlineData("--repeat", "0")]
    [InlineData("--bandwidth-mib", "0")]
    public void BadCountsNameTheOption(string option, string value)
    {
        var (code, output, err) = Bench("--model", tiny.Path, option, value);
        Assert.Equal(Program.UsageError, code);
        Assert.Equal("", output);
        Assert.Contains($"{option} must be at least 1, got {value}", err);
    }

    [Fact]
    public void MissingModelDirectoryIsAClearError()
    {
        var (code, _, err) = Bench("--model", Path.Combine(tiny.Path, "no-such-dir"), "--json");
        Assert.Equal(Program.UsageError, code);
        Assert.StartsWith("error:", err);
    }

    private static void AssertClose(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-9 * Math.Abs(expected), $"expected {expected}, got {actual}");
}
