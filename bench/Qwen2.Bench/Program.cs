using BenchmarkDotNet.Running;
using Qwen2.Bench;

// The suites (run from the repository root; results land in BenchmarkDotNet.Artifacts/):
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*CacheVsNoCache*'   # prefill, decode steps 1 and 2, 50 steps; with vs without cache
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*MatVecKernels*'    # y = W x, BF16/F16/F32, ours vs TensorPrimitives.Dot, GB/s
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*ReadBandwidth*'    # this machine's read bandwidth, 1 and 2 threads
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*BatchDecode*'      # one decode step of 1, 2, 4, 8, 16 sequences on a paged cache, tokens/s and vs batch 1
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*PagedVsRing*'      # one decode step at 256 and 2048 tokens of context, ring cache vs paged
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*SmallBatchKernels*' # BF16 products of 1-16 tokens, in-cache vs streamed matrix, GFLOP/s
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*ServerLoopback*'   # 1 and 8 streams of 64 tokens through qwen2 serve over loopback vs the generator directly, tokens/s
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*ServerPrefixCache*'   # time to first token of a 1000-token prompt cold vs sharing its prefix with a finished request
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*QuantizedKernels*'  # Q8_0 … Q6_K products of 1, 64, 512 tokens, ours vs dequantize + Dot, GB/s and GFLOP/s
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*ConstrainedDecoding*' # JSON-constrained decoding: the check of a sampled token and the vocabulary mask vs a decode step
// The model suites load QWEN2_MODEL when set (a directory or cached hub id); else QWEN2_BENCH_SHAPE: qwen2-0.5b (default,
// the BF16 checkpoint `qwen2 demo` keeps under ~/.cache/qwen2managed, synthesized on first use), another synthetic
// shape name, or tiny (the repository's tests/fixtures/models/tiny-bf16).
// A dry run checks that the suites run, not their speed: with neither variable set it uses the tiny fixture rather than
// loading (or first writing) the 0.99 GB checkpoint:
//   cd bench/Qwen2.Bench && dotnet run -c Release --no-build -- --filter '*CacheVsNoCache*' --job dry
// Tools for the held-out checks of quantized files (tools/gguf/check.sh), e.g. llama.cpp's quantizer:
//   dotnet run -c Release --project bench/Qwen2.Bench -- quantize-peer IN.gguf OUT.gguf q4_k_m
// (see PeerTools for the list); anything else goes to BenchmarkDotNet.
if (PeerTools.TryRun(args, out int toolExit)) return toolExit;
bool dry = args.Select((a, i) => (a, i)).Any(p => p.a is "--job" or "-j" && p.i + 1 < args.Length && args[p.i + 1].Equals("dry", StringComparison.OrdinalIgnoreCase));
if (dry && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Qwen2.Native.ModelLocator.ModelVariable))
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(BenchCheckpoint.ShapeVariable)))
{
    Environment.SetEnvironmentVariable(BenchCheckpoint.ShapeVariable, "tiny"); // inherited by the benchmark processes
    Console.WriteLine($"dry run: {BenchCheckpoint.ShapeVariable}=tiny (set it, or {Qwen2.Native.ModelLocator.ModelVariable}, to time another checkpoint)");
}
BenchmarkSwitcher.FromAssembly(typeof(CacheVsNoCache).Assembly).Run(args);
return 0;
