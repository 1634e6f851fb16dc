using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Serialization;
using Qwen2.Kernels;
using Qwen2.Native;

namespace Qwen2.Cli;

/// <summary>
/// <c>qwen2 bench</c>: load time, prefill and decode speed with the KV cache, and decode's weight reads against the
/// machine's read bandwidth, measured by the same process on the same threads, so the fraction compares like with like.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption();
        model.Description = "Checkpoint directory or Hugging Face hub id to time. Default: the demo's synthesized Qwen2-0.5B BF16 checkpoint (written once under ~/.cache/qwen2managed).";
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length for the prefill measurement.", DefaultValueFactory = _ => 64 };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Greedy decode steps timed.", DefaultValueFactory = _ => 128 };
        var threads = new Option<int?>("--threads") { Description = "Threads for the model and the bandwidth probe (default: processor count)." };
        var repeat = new Option<int>("--repeat") { Description = "Times prefill and decode are run; the median is reported, with min and max.", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var bandwidthMib = new Option<int>("--bandwidth-mib")
        {
            Description = "MiB the read-bandwidth probe reads per pass; keep it many times the last-level cache.",
            DefaultValueFactory = _ => (int)(MemoryBandwidth.DefaultBufferBytes >> 20),
        };
        var cmd = new Command("bench", "Measure load time, prefill and decode tokens/s, and decode's weight reads against this machine's read bandwidth.")
        {
            model, promptTokens, genTokens, threads, repeat, json, bandwidthMib,
        };
        cmd.SetAction(p => Program.Guard(stderr, () =>
        {
            var settings = new Settings(
                Program.AtLeast1(p.GetValue(promptTokens), "--prompt-tokens"),
                Program.AtLeast1(p.GetValue(genTokens), "--gen-tokens"),
                Program.AtLeast1(p.GetValue(threads), "--threads"),
                Program.AtLeast1(p.GetValue(repeat), "--repeat"),
                Program.AtLeast1(p.GetValue(bandwidthMib), "--bandwidth-mib"));
            string checkpoint = p.GetValue(model) is { } m ? Program.ResolveModel(m) : DemoCommand.Synthesize("qwen2-0.5b", "bf16", null, stderr);
            var report = Measure(checkpoint, settings, stderr);
            if (p.GetValue(json)) stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(report, BenchJsonContext.Default.BenchReport));
            else WriteTable(report, stdout);
            stdout.Flush();
            return 0;
        }));
        return cmd;
    }

    private sealed record Settings(int PromptTokens, int GenTokens, int? Threads, int Repeat, int BandwidthMib);

    private static BenchReport Measure(string dir, Settings s, TextWriter log)
    {
        long t0 = Stopwatch.GetTimestamp();
        using var model = Qwen2Model.Load(dir, new ModelOptions { Threads = s.Threads });
        double loadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        var c = model.Config;
        int[] prompt = Enumerable.Range(0, s.PromptTokens).Select(i => (int)((i * 2654435761L + 17) % c.VocabSize)).ToArray();
        var logits = new float[c.VocabSize];
        var cache = model.CreateCache(s.PromptTokens + s.GenTokens);

        // Warm-up: one prefill and a few cached steps, so no run is charged for JIT tiers or first page faults.
        model.ForwardInto(prompt, cache, logits);
        for (int i = 0; i < Math.Min(s.GenTokens, 4); i++) model.ForwardInto([Activations.ArgMax(logits)], cache, logits);

        log.WriteLine($"timing {s.PromptTokens}-token prefill and {s.GenTokens} greedy decode steps, {s.Repeat} time(s) ...");
        var prefill = new double[s.Repeat];
        var decode = new double[s.Repeat];
        for (int r = 0; r < s.Repeat; r++)
        {
            cache.Reset();
            long p0 = Stopwatch.GetTimestamp();
            model.ForwardInto(prompt, cache, logits);
            prefill[r] = s.PromptTokens / Stopwatch.GetElapsedTime(p0).TotalSeconds;
            long d0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < s.GenTokens; i++) model.ForwardInto([Activations.ArgMax(logits)], cache, logits);
            decode[r] = s.GenTokens / Stopwatch.GetElapsedTime(d0).TotalSeconds;
        }

        log.WriteLine($"measuring read bandwidth: {model.Threads} thread(s) x {MemoryBandwidth.StreamsPerThread} streams over {s.BandwidthMib} MiB ...");
        var bw = MemoryBandwidth.Measure(model.Threads, (long)s.BandwidthMib << 20);

        double decodeRate = Median(decode), decodeGbps = model.DecodeBytesPerToken * decodeRate / 1e9;
        return new BenchReport
        {
            Model = dir,
            ModelName = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)),
            Dtype = c.TorchDtype ?? "unknown",
            Layers = c.NumHiddenLayers,
            HiddenSize = c.HiddenSize,
            IntermediateSize = c.IntermediateSize,
            AttentionHeads = c.NumAttentionHeads,
            KeyValueHeads = c.NumKeyValueHeads,
            VocabSize = c.VocabSize,
            WeightBytes = model.DecodeBytesPerToken,
            Isa = IsaSupport.Best.ToString(),
            Threads = model.Threads,
            ProcessorCount = Environment.ProcessorCount,
            LoadMs = loadMs,
            PromptTokens = s.PromptTokens,
            GenTokens = s.GenTokens,
            Repeat = s.Repeat,
            PrefillTokensPerS = Median(prefill),
            PrefillTokensPerSMin = prefill.Min(),
            PrefillTokensPerSMax = prefill.Max(),
            DecodeTokensPerS = decodeRate,
            DecodeTokensPerSMin = decode.Min(),
            DecodeTokensPerSMax = decode.Max(),
            DecodeGbPerS = decodeGbps,
            ReadBandwidthGbPerS = bw.GigabytesPerSecond,
            BandwidthFraction = decodeGbps / bw.GigabytesPerSecond,
            BandwidthBufferBytes = bw.BufferBytes,
            BandwidthStreamsPerThread = bw.StreamsPerThread,
            BandwidthPasses = bw.Passes,
        };
    }

    private static double Median(double[] values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static void WriteTable(BenchReport r, TextWriter w)
    {
        var ci = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(ci,
            $"Qwen2 checkpoint {r.ModelName}: {r.Layers} layers, hidden {r.HiddenSize}, intermediate {r.IntermediateSize}, heads {r.AttentionHeads}/{r.KeyValueHeads}, vocab {r.VocabSize}, {r.WeightBytes / 1e9:F3} GB of {r.Dtype} weights read per token"));
        w.WriteLine(string.Create(ci, $"{r.Threads} threads, {r.Isa} kernels, {r.ProcessorCount} logical processors; loaded in {r.LoadMs:F0} ms"));
        w.WriteLine();
        w.WriteLine(r.Repeat > 1 ? string.Create(ci, $"| measure | median of {r.Repeat} | min | max |") : "| measure | value | | |");
        w.WriteLine("| --- | ---: | ---: | ---: |");
        string Range(double min, double max) => r.Repeat > 1 ? string.Create(ci, $"{min:F1} | {max:F1}") : " | ";
        w.WriteLine(string.Create(ci, $"| prefill, {r.PromptTokens} tokens (tokens/s) | {r.PrefillTokensPerS:F1} | {Range(r.PrefillTokensPerSMin, r.PrefillTokensPerSMax)} |"));
        w.WriteLine(string.Create(ci, $"| decode, {r.GenTokens} greedy steps (tokens/s) | {r.DecodeTokensPerS:F2} | {Range(r.DecodeTokensPerSMin, r.DecodeTokensPerSMax)} |"));
        w.WriteLine(string.Create(ci, $"| decode weight reads (GB/s) | {r.DecodeGbPerS:F2} | | |"));
        w.WriteLine(string.Create(ci,
            $"| read bandwidth, {r.Threads} threads x {r.BandwidthStreamsPerThread} streams, {r.BandwidthBufferBytes >> 20} MiB, best of {r.BandwidthPasses} (GB/s) | {r.ReadBandwidthGbPerS:F2} | | |"));
        w.WriteLine(string.Create(ci, $"| decode / read bandwidth | {r.BandwidthFraction * 100:F0}% | | |"));
    }
}

/// <summary>What <c>qwen2 bench</c> measured; <c>--json</c> prints it with snake_case names.</summary>
internal sealed class BenchReport
{
    /// <summary>Checkpoint directory.</summary>
    public required string Model { get; init; }
    /// <summary>The directory's name.</summary>
    public required string ModelName { get; init; }
    /// <summary>config.json's torch_dtype.</summary>
    public required string Dtype { get; init; }
    /// <summary>Decoder layers.</summary>
    public int Layers { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public int HiddenSize { get; init; }
    /// <summary>Width of the MLP's inner layer.</summary>
    public int IntermediateSize { get; init; }
    /// <summary>Query heads.</summary>
    public int AttentionHeads { get; init; }
    /// <summary>Key/value heads.</summary>
    public int KeyValueHeads { get; init; }
    /// <summary>Vocabulary size.</summary>
    public int VocabSize { get; init; }
    /// <summary>Bytes of weights read per decode token (<see cref="Qwen2Model.DecodeBytesPerToken"/>).</summary>
    public long WeightBytes { get; init; }
    /// <summary>Kernel path (<see cref="IsaSupport.Best"/>).</summary>
    public required string Isa { get; init; }
    /// <summary>Threads of the model and of the bandwidth probe.</summary>
    public int Threads { get; init; }
    /// <summary>Environment.ProcessorCount.</summary>
    public int ProcessorCount { get; init; }
    /// <summary>Time to load the checkpoint.</summary>
    public double LoadMs { get; init; }
    /// <summary>Prompt length of the prefill.</summary>
    public int PromptTokens { get; init; }
    /// <summary>Decode steps timed per run.</summary>
    public int GenTokens { get; init; }
    /// <summary>Runs of prefill and decode.</summary>
    public int Repeat { get; init; }
    /// <summary>Median prefill speed with the cache.</summary>
    public double PrefillTokensPerS { get; init; }
    /// <summary>Slowest run's prefill speed.</summary>
    public double PrefillTokensPerSMin { get; init; }
    /// <summary>Fastest run's prefill speed.</summary>
    public double PrefillTokensPerSMax { get; init; }
    /// <summary>Median decode speed with the cache.</summary>
    public double DecodeTokensPerS { get; init; }
    /// <summary>Slowest run's decode speed.</summary>
    public double DecodeTokensPerSMin { get; init; }
    /// <summary>Fastest run's decode speed.</summary>
    public double DecodeTokensPerSMax { get; init; }
    /// <summary><see cref="WeightBytes"/> × <see cref="DecodeTokensPerS"/> / 1e9.</summary>
    public double DecodeGbPerS { get; init; }
    /// <summary>The machine's read bandwidth on <see cref="Threads"/> threads.</summary>
    public double ReadBandwidthGbPerS { get; init; }
    /// <summary><see cref="DecodeGbPerS"/> / <see cref="ReadBandwidthGbPerS"/>.</summary>
    public double BandwidthFraction { get; init; }
    /// <summary>Bytes the bandwidth probe read per pass.</summary>
    public long BandwidthBufferBytes { get; init; }
    /// <summary>Streams each probe thread read at once.</summary>
    public int BandwidthStreamsPerThread { get; init; }
    /// <summary>Timed probe passes (the fastest is reported).</summary>
    public int BandwidthPasses { get; init; }
}

/// <summary>Source-generated serialization of <see cref="BenchReport"/> (no reflection, trimming-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(BenchReport))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
