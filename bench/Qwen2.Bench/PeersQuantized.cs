// Qwen2Managed against llama.cpp (LLamaSharp 0.30.0, CPU backend) on the same llama.cpp-quantized GGUF file.
//
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*PeersQuantized*'
//   QWEN2_BENCH_SHAPE=qwen2-1.5b dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*PeersQuantized*'
//
// The checkpoint is the Peers suite's (QWEN2_MODEL, else the synthesized BF16 checkpoint of QWEN2_BENCH_SHAPE, default
// qwen2-0.5b), exported once to F16 GGUF, then quantized once by llama.cpp's own quantizer (as llama-quantize does from
// the F16 file people convert) into each mix; both engines load that same quantized file. Operations as in Peers: prefill
// of 64 and 512 tokens, 128 decode steps after a 64-token prompt, 1 and 2 threads; ours is the baseline of each
// (operation, mix, threads) group, and all cases run in one BenchmarkDotNet run, one after the other. llama.cpp runs with
// its defaults (flash attention auto, F16 KV cache); the setup prints how far its logits (flash attention off, F32 cache)
// are from ours on the file, and fails when they are further apart than a wrong load would put them. A dry run on the tiny
// shape (QWEN2_BENCH_SHAPE=tiny ... --job dry) runs the q4_k_m cases only: llama.cpp cannot make q8_0 of its 176-wide rows.
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Qwen2.Native.Gguf;
using Qwen2.Reference;

namespace Qwen2.Bench;

/// <summary>Prefill and decode of one llama.cpp-quantized GGUF file (Q8_0, Q4_K_M) in both engines, 1 and 2 threads.</summary>
public class PeersQuantized : PeerRuns
{
    /// <summary>llama-quantize's mix name.</summary>
    [Params("q8_0", "q4_k_m")]
    public string Mix { get; set; } = "q8_0";

    /// <summary>Loads the quantized file into our engine.</summary>
    [GlobalSetup(Targets = [nameof(Ours_Prefill64), nameof(Ours_Prefill512), nameof(Ours_Decode128)])]
    public void SetupOurs() => LoadOurs(QuantizedFile(Mix));

    /// <summary>Checks llama.cpp's logits against ours on the quantized file, then loads it for timing.</summary>
    [GlobalSetup(Targets = [nameof(Llama_Prefill64), nameof(Llama_Prefill512), nameof(Llama_Decode128)])]
    public void SetupLlama()
    {
        string gguf = QuantizedFile(Mix);
        // Both engines quantize activations, differently: about a percent of the largest logit apart; a misread tensor is far more.
        PeersModel.SanityCheck(gguf, Threads, limit: 1.0, oursPath: gguf);
        LoadLlama(gguf);
    }

    /// <summary>Every measured call starts from an empty cache; decode calls from the 64-token prompt (untimed).</summary>
    [IterationSetup(Targets = [nameof(Ours_Prefill64), nameof(Ours_Prefill512)])]
    public void ResetOurs() => ResetOursCache();

    /// <summary>As <see cref="ResetOurs"/>, then the prompt.</summary>
    [IterationSetup(Targets = [nameof(Ours_Decode128)])]
    public void PromptOurs() => PromptOursCache();

    /// <summary>Clears llama.cpp's KV cache.</summary>
    [IterationSetup(Targets = [nameof(Llama_Prefill64), nameof(Llama_Prefill512)])]
    public void ResetLlama() => ResetLlamaCache();

    /// <summary>As <see cref="ResetLlama"/>, then the prompt.</summary>
    [IterationSetup(Targets = [nameof(Llama_Decode128)])]
    public void PromptLlama() => PromptLlamaCache();

    /// <summary>Ours: 64 tokens in one forward call.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory(Peers.Prefill64)]
    public void Ours_Prefill64() => OursPrefill(PromptTokens);

    /// <summary>llama.cpp: 64 tokens in one batch.</summary>
    [Benchmark, BenchmarkCategory(Peers.Prefill64)]
    public void Llama_Prefill64() => LlamaPrefill(PromptTokens);

    /// <summary>Ours: 512 tokens in one forward call.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory(Peers.Prefill512)]
    public void Ours_Prefill512() => OursPrefill(LongPromptTokens);

    /// <summary>llama.cpp: 512 tokens in one batch.</summary>
    [Benchmark, BenchmarkCategory(Peers.Prefill512)]
    public void Llama_Prefill512() => LlamaPrefill(LongPromptTokens);

    /// <summary>Ours: 128 one-token steps after the prompt.</summary>
    [Benchmark(Baseline = true), BenchmarkCategory(Peers.Decode128)]
    public void Ours_Decode128() => OursDecode();

    /// <summary>llama.cpp: 128 one-token steps after the prompt.</summary>
    [Benchmark, BenchmarkCategory(Peers.Decode128)]
    public void Llama_Decode128() => LlamaDecode();

    /// <summary>The F16 export of the checkpoint quantized by llama.cpp into <paramref name="mix"/>, made once and kept beside it.</summary>
    internal static string QuantizedFile(string mix)
    {
        string f16 = PeersModel.Gguf(GgufFileType.F16);
        string path = f16[..^"-f16.gguf".Length] + $"-{mix}-llama.gguf";
        if (File.Exists(path)) return path;
        Console.WriteLine($"// quantizing {f16} to {mix} with llama.cpp into {path}");
        try
        {
            LlamaCpp.Quantize(f16, path, mix, Environment.ProcessorCount);
        }
        catch (InvalidOperationException e)
        {
            // llama.cpp refuses rows that do not fill its 32-element blocks (the tiny shape's intermediate 176).
            throw new InvalidOperationException($"{e.Message}; llama.cpp quantizes only rows of whole 32-element blocks: pick a real shape (QWEN2_BENCH_SHAPE=qwen2-0.5b or qwen2-1.5b)", e);
        }
        return path;
    }
}
