// Qwen2Managed against llama.cpp (through LLamaSharp 0.30.0, CPU backend) on the same weights.
//
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*Peers*'
//
// The model is QWEN2_MODEL when set, else a synthesized Qwen2-0.5B BF16 checkpoint kept under
// ~/.cache/qwen2managed/demo-qwen2-0.5b-bf16 (the one `qwen2 demo` uses; written on first use, about 1 GB);
// QWEN2_BENCH_SHAPE=tiny (or any SyntheticShape name) picks another shape for a quick functional run. The checkpoint is
// exported once by GgufExporter to F16 and F32 GGUF files under ~/.cache/qwen2managed/peers-gguf and reused.
// Operations: prefill of 64 and of 512 tokens, and 128 decode steps after a 64-token prompt, timed from a reset
// cache (the reset and the prompt are untimed); no sampling: fixed token ids go in, the last position's logits come out.
// Qwen2Managed rows are the baseline of each (operation, threads) group. llama.cpp runs with its defaults (flash
// attention auto, F16 KV cache); the setup of the F32 rows first checks that llama.cpp with flash attention off and an F32
// KV cache gives our logits (max abs diff printed, setup fails above 1e-2), which also checks the exporter; the F16 rows'
// setup prints the same difference for the F16 export without enforcing a limit.
// The suite brings its own job (1 launch, 1 warmup, 3 iterations of one invocation): options such as --job or
// --inProcess add jobs beside it rather than replacing it. Narrow a run with filters, e.g. --filter '*Peers*Prefill64*'.
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using LLama;
using LLama.Common;
using LLama.Native;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Gguf;
using Qwen2.Reference;

namespace Qwen2.Bench;

/// <summary>Prefill and decode, Qwen2Managed (BF16 safetensors) against llama.cpp (F16 and F32 GGUF), 1 and 2 threads.</summary>
public class Peers : PeerRuns
{
    internal const string Prefill64 = "Prefill64", Prefill512 = "Prefill512", Decode128 = "Decode128";

    /// <summary>Loads our model.</summary>
    [GlobalSetup(Targets = [nameof(Ours_Prefill64), nameof(Ours_Prefill512), nameof(Ours_Decode128)])]
    public void SetupOurs() => LoadOurs(PeersModel.Checkpoint());

    /// <summary>Loads the F16 GGUF into llama.cpp.</summary>
    [GlobalSetup(Targets = [nameof(LlamaF16_Prefill64), nameof(LlamaF16_Prefill512), nameof(LlamaF16_Decode128)])]
    public void SetupLlamaF16()
    {
        string gguf = PeersModel.Gguf(GgufFileType.F16);
        PeersModel.SanityCheck(gguf, Threads, limit: null); // F16 weights round: printed, not enforced
        LoadLlama(gguf);
    }

    /// <summary>Checks llama.cpp's logits against ours on the F32 GGUF, then loads it for timing.</summary>
    [GlobalSetup(Targets = [nameof(LlamaF32_Prefill64), nameof(LlamaF32_Prefill512), nameof(LlamaF32_Decode128)])]
    public void SetupLlamaF32()
    {
        string gguf = PeersModel.Gguf(GgufFileType.F32);
        PeersModel.SanityCheck(gguf, Threads, limit: 1e-2);
        LoadLlama(gguf);
    }

    /// <summary>Every measured call starts from an empty cache; decode calls from the 64-token prompt (untimed).</summary>
    [IterationSetup(Targets = [nameof(Ours_Prefill64), nameof(Ours_Prefill512)])]
    public void ResetOurs() => ResetOursCache();

    /// <summary>As <see cref="ResetOurs"/>, then the prompt.</summary>
    [IterationSetup(Targets = [nameof(Ours_Decode128)])]
    public void PromptOurs() => PromptOursCache();

    /// <summary>Clears llama.cpp's KV cache.</summary>
    [IterationSetup(Targets = [nameof(LlamaF16_Prefill64), nameof(LlamaF16_Prefill512), nameof(LlamaF32_Prefill64), nameof(LlamaF32_Prefill512)])]
    public void ResetLlama() => ResetLlamaCache();

    /// <summary>As <see cref="ResetLlama"/>, then the prompt.</summary>
    [IterationSetup(Targets = [nameof(LlamaF16_Decode128), nameof(LlamaF32_Decode128)])]
    public void PromptLlama() => PromptLlamaCache();

    /// <summary>Ours: 64 tokens in one forward call.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory(Prefill64)]
    public void Ours_Prefill64() => OursPrefill(PromptTokens);

    /// <summary>llama.cpp F16: 64 tokens in one batch.</summary>
    [Benchmark, BenchmarkCategory(Prefill64)]
    public void LlamaF16_Prefill64() => LlamaPrefill(PromptTokens);

    /// <summary>llama.cpp F32: 64 tokens in one batch.</summary>
    [Benchmark, BenchmarkCategory(Prefill64)]
    public void LlamaF32_Prefill64() => LlamaPrefill(PromptTokens);

    /// <summary>Ours: 512 tokens in one forward call.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory(Prefill512)]
    public void Ours_Prefill512() => OursPrefill(LongPromptTokens);

    /// <summary>llama.cpp F16: 512 tokens in one batch.</summary>
    [Benchmark, BenchmarkCategory(Prefill512)]
    public void LlamaF16_Prefill512() => LlamaPrefill(LongPromptTokens);

    /// <summary>llama.cpp F32: 512 tokens in one batch.</summary>
    [Benchmark, BenchmarkCategory(Prefill512)]
    public void LlamaF32_Prefill512() => LlamaPrefill(LongPromptTokens);

    /// <summary>Ours: 128 one-token steps after the prompt.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory(Decode128)]
    public void Ours_Decode128() => OursDecode();

    /// <summary>llama.cpp F16: 128 one-token steps after the prompt.</summary>
    [Benchmark, BenchmarkCategory(Decode128)]
    public void LlamaF16_Decode128() => LlamaDecode();

    /// <summary>llama.cpp F32: 128 one-token steps after the prompt.</summary>
    [Benchmark, BenchmarkCategory(Decode128)]
    public void LlamaF32_Decode128() => LlamaDecode();
}

/// <summary>One process per case, a short fixed schedule: the suite takes minutes, not hours, on the 0.5B shape.</summary>
internal sealed class PeersConfig : ManualConfig
{
    public PeersConfig()
    {
        // One invocation per iteration, as the iteration setups (cache reset, prompt) require. Tiered compilation off, as
        // the qwen2 CLI ships: with five calls in all, a 64-token prefill would otherwise be timed partly in code the
        // JIT has not yet recompiled at its full tier (llama.cpp, native, is unaffected).
        AddJob(Job.Default.WithId("Peers").WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3).WithInvocationCount(1).WithUnrollFactor(1)
            .WithEnvironmentVariable("DOTNET_TieredCompilation", "0"));
        AddColumn(new TokensPerSecondColumn());
        AddColumn(StatisticColumn.Min);
    }
}

/// <summary>Tokens per second from the mean time: 64, 512 or 128 tokens per operation by category.</summary>
internal sealed class TokensPerSecondColumn()
    : RateColumn("tok/s", "Tokens per second: the operation's tokens over its mean time", 1, "F1")
{
    protected override double? AmountPerOperation(BenchmarkCase c) => c.Descriptor.Categories.FirstOrDefault() switch
    {
        Peers.Prefill64 => 64,
        Peers.Prefill512 => 512,
        Peers.Decode128 => 128,
        _ => null,
    };
}

/// <summary>The checkpoint, its GGUF exports and llama.cpp loading, shared by the benchmark's setups.</summary>
internal static class PeersModel
{
    /// <summary>QWEN2_MODEL, or the synthesized checkpoint of QWEN2_BENCH_SHAPE (default qwen2-0.5b), written once.</summary>
    public static string Checkpoint()
    {
        if (Environment.GetEnvironmentVariable("QWEN2_MODEL") is { Length: > 0 } m) return m;
        var shape = SyntheticShape.Get(Environment.GetEnvironmentVariable("QWEN2_BENCH_SHAPE") is { Length: > 0 } s ? s : SyntheticShape.Qwen2_0_5B.Name);
        // The same directory, seed and marker as `qwen2 demo`, so either one reuses what the other wrote.
        string dir = Path.Combine(CacheRoot(), $"demo-{shape.Name}-bf16");
        string done = Path.Combine(dir, ".complete");
        if (File.Exists(done)) return dir;
        Console.WriteLine($"// synthesizing {shape.Name} into {dir}");
        SyntheticCheckpoint.Write(dir, shape, WeightType.BF16, seed: 0, overwrite: true);
        CopyTokenizer(dir);
        File.WriteAllText(done, "written by the Peers benchmark\n");
        return dir;
    }

    /// <summary>
    /// Copies a tokenizer (tokenizer.json.gz, tokenizer_config.json) into <paramref name="dir"/>: the one in
    /// <paramref name="from"/>, or the repository's Qwen2.5 tokenizer when it is null.
    /// </summary>
    public static void CopyTokenizer(string dir, string? from = null)
    {
        string assets = from ?? Path.Combine(RepoRoot(), "src", "Qwen2.Cli", "Assets", "tokenizer", "qwen2.5");
        File.Copy(Path.Combine(assets, "tokenizer.json.gz"), Path.Combine(dir, "tokenizer.json.gz"), overwrite: true);
        File.Copy(Path.Combine(assets, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"), overwrite: true);
    }

    /// <summary>The checkpoint exported to <paramref name="type"/>, exported on first use and kept.</summary>
    public static string Gguf(GgufFileType type)
    {
        string checkpoint = Path.GetFullPath(Checkpoint());
        string dir = Path.Combine(CacheRoot(), "peers-gguf");
        Directory.CreateDirectory(dir);
        // Named after the checkpoint's path and weight file, so another checkpoint never reuses a stale export.
        var weights = new FileInfo(Path.Combine(checkpoint, CheckpointFiles.SingleFile));
        string key = $"{checkpoint}|{(weights.Exists ? weights.Length + "|" + weights.LastWriteTimeUtc.Ticks : "sharded")}";
        string hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..12].ToLowerInvariant();
        string path = Path.Combine(dir, $"{Path.GetFileName(checkpoint)}-{hash}-{type.ToString().ToLowerInvariant()}.gguf");
        if (File.Exists(path)) return path;
        Console.WriteLine($"// exporting {checkpoint} to {path}");
        var r = GgufExporter.Export(checkpoint, path, type);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// exported {r.FileBytes:N0} bytes in {r.Elapsed.TotalSeconds:F1} s"));
        return path;
    }

    /// <summary>Loads a GGUF file on the CPU (see <see cref="LlamaCpp.Load"/>).</summary>
    public static (LLamaWeights, LLamaContext) LoadLlama(string gguf, int threads, bool exact) => LlamaCpp.Load(gguf, threads, exact);

    /// <summary>
    /// Prints how far llama.cpp's logits on <paramref name="gguf"/> are from ours (on <paramref name="oursPath"/>, by
    /// default the checkpoint) for a short prompt and throws above <paramref name="limit"/>: on the F32 export they must
    /// agree, otherwise the exporter is wrong.
    /// </summary>
    public static void SanityCheck(string gguf, int threads, double? limit, string? oursPath = null)
    {
        int[] ids = Tokens(8);
        using var ours = Qwen2Model.Load(oursPath ?? Checkpoint(), new ModelOptions { Threads = threads });
        var expected = ours.Forward(ids);
        var (weights, context) = LoadLlama(gguf, threads, exact: true);
        using (weights)
        using (context)
        {
            var batch = new LLamaBatch();
            for (int i = 0; i < ids.Length; i++) batch.Add((LLamaToken)ids[i], i, LLamaSeqId.Zero, true);
            Check(context.Decode(batch));
            double maxDiff = 0, maxLogit = 0;
            for (int i = 0; i < ids.Length; i++)
            {
                var theirs = context.NativeHandle.GetLogitsIth(i);
                var row = expected[i];
                if (theirs.Length != row.Length) throw new InvalidOperationException($"llama.cpp gave {theirs.Length} logits per position, we give {row.Length}");
                for (int j = 0; j < row.Length; j++)
                {
                    maxDiff = Math.Max(maxDiff, Math.Abs(theirs[j] - row[j]));
                    maxLogit = Math.Max(maxLogit, Math.Abs(row[j]));
                }
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"// sanity: llama.cpp on {Path.GetFileName(gguf)} vs Qwen2Managed logits over {ids.Length} positions: max abs diff {maxDiff:G3} (max |logit| {maxLogit:G3})"));
            if (limit is { } l && !(maxDiff <= l))
                throw new InvalidOperationException($"llama.cpp's logits on {gguf} differ from ours by {maxDiff} (limit {limit}): the GGUF export is wrong");
        }
    }

    /// <summary>Fixed pseudo-random ids among Qwen's ordinary tokens (below the added tokens at 151643).</summary>
    public static int[] Tokens(int count)
    {
        var rng = new Random(1);
        return Enumerable.Range(0, count).Select(_ => rng.Next(151643)).ToArray();
    }

    public static void Check(DecodeResult result) => LlamaCpp.Check(result);

    internal static string CacheRoot()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "qwen2managed");
    }

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Qwen2Managed.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("the repository root (Qwen2Managed.sln) was not found above " + AppContext.BaseDirectory + "; set QWEN2_MODEL to a checkpoint directory");
    }
}
