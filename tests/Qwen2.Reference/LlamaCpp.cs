using LLama.Common;
using LLama.Native;
using LLama;

namespace Qwen2.Reference;

/// <summary>
/// llama.cpp through LLamaSharp (tests and bench only; this file is compiled into both): its own quantizer, and its
/// logits. Shared so that the tests, the Peers benchmarks and the CLI checks run llama.cpp the same way.
/// </summary>
public static class LlamaCpp
{
    private static readonly Lock Gate = new();
    private static bool _configured;

    /// <summary>The quantization mixes compared, in llama-quantize's names.</summary>
    public static IReadOnlyList<string> Mixes { get; } = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k_m", "q5_k_m", "q6_k"];

    /// <summary>llama.cpp's file type for a mix name of <see cref="Mixes"/>.</summary>
    public static LLamaFtype Ftype(string mix) => mix.ToLowerInvariant() switch
    {
        "q8_0" => LLamaFtype.MOSTLY_Q8_0,
        "q4_0" => LLamaFtype.MOSTLY_Q4_0,
        "q4_1" => LLamaFtype.MOSTLY_Q4_1,
        "q5_0" => LLamaFtype.MOSTLY_Q5_0,
        "q5_1" => LLamaFtype.MOSTLY_Q5_1,
        "q4_k_m" => LLamaFtype.MOSTLY_Q4_K_M,
        "q5_k_m" => LLamaFtype.MOSTLY_Q5_K_M,
        "q6_k" => LLamaFtype.MOSTLY_Q6_K,
        _ => throw new ArgumentException($"unknown quantization mix '{mix}'; known: {string.Join(", ", Mixes)}", nameof(mix)),
    };

    /// <summary>
    /// Quantizes <paramref name="input"/> (an F32 or F16 GGUF) into <paramref name="output"/> with llama.cpp's quantizer,
    /// output tensor included as llama-quantize does by default; written to a partial file, then renamed.
    /// </summary>
    public static void Quantize(string input, string output, string mix, int threads = 2)
    {
        var ftype = Ftype(mix);
        Configure();
        string partial = output + "." + Guid.NewGuid().ToString("N")[..8] + ".partial";
        try
        {
            if (!LLamaQuantizer.Quantize(input, partial, ftype, threads, allowRequantize: false, quantizeOutputTensor: true))
                throw new InvalidOperationException(
                    $"llama.cpp failed to quantize {input} to {mix} (its log above says why; {FreeBytes(output) / (1 << 20):N0} MiB free beside {output})");
            File.Move(partial, output, overwrite: true);
        }
        finally
        {
            if (File.Exists(partial)) File.Delete(partial);
        }
    }

    // A full disk is the usual cause of a failed quantization, and llama.cpp reports it only as an iostream error.
    private static long FreeBytes(string path) =>
        new DriveInfo(Path.GetDirectoryName(Path.GetFullPath(path)) ?? Path.GetFullPath(path)).AvailableFreeSpace;

    /// <summary>
    /// Loads a GGUF file on the CPU. <paramref name="exact"/> turns flash attention off and keeps the KV cache in F32,
    /// so that llama.cpp's only roundings are those of its kernels (its defaults, F16 K/V and flash attention, add more).
    /// </summary>
    public static (LLamaWeights Weights, LLamaContext Context) Load(string gguf, int threads, bool exact, uint contextSize = 1024)
    {
        Configure();
        var p = new ModelParams(gguf)
        {
            ContextSize = contextSize,
            BatchSize = 512,
            UBatchSize = 512,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
        };
        if (exact)
        {
            p.FlashAttention = false;
            p.TypeK = GGMLType.GGML_TYPE_F32;
            p.TypeV = GGMLType.GGML_TYPE_F32;
        }
        var weights = LLamaWeights.LoadFromFile(p);
        try
        {
            return (weights, weights.CreateContext(p));
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>llama.cpp's logits (flash attention off, F32 KV cache) at every position of <paramref name="tokens"/>, in one batch.</summary>
    public static float[][] Logits(string gguf, IReadOnlyList<int> tokens, int threads = 2)
    {
        var (weights, context) = Load(gguf, threads, exact: true, contextSize: (uint)Math.Max(64, tokens.Count));
        using (weights)
        using (context)
        {
            var batch = new LLamaBatch();
            for (int i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, true);
            Check(context.Decode(batch), gguf);
            var rows = new float[tokens.Count][];
            for (int i = 0; i < rows.Length; i++) rows[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
            return rows;
        }
    }

    /// <summary>
    /// llama.cpp's pooled embedding of <paramref name="tokens"/> (one sequence; the pooling its GGUF file names, LAST for
    /// Qwen3-Embedding; F32 KV cache, no flash attention), L2-normalised as its embedding tool does.
    /// </summary>
    public static float[] Embedding(string gguf, IReadOnlyList<int> tokens, int threads = 2)
    {
        Configure();
        var p = new ModelParams(gguf)
        {
            ContextSize = (uint)Math.Max(64, tokens.Count), BatchSize = 512, UBatchSize = 512, Threads = threads, BatchThreads = threads,
            GpuLayerCount = 0, Embeddings = true, FlashAttention = false, TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var context = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, i == tokens.Count - 1);
        Check(context.Decode(batch), gguf);
        var v = context.NativeHandle.GetEmbeddingsSeq(LLamaSeqId.Zero).ToArray();
        if (v.Length == 0) throw new InvalidOperationException($"llama.cpp gave no pooled embedding for {gguf} (pooling {context.NativeHandle.PoolingType})");
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        return v.Select(x => (float)(x / norm)).ToArray();
    }

    /// <summary>Throws unless a decode call succeeded.</summary>
    public static void Check(DecodeResult result, string what = "llama.cpp")
    {
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed on {what}: {result}");
    }

    /// <summary>
    /// LLamaSharp picks the CPU backend's build by itself; only its log is routed here, warnings and errors to stderr, so
    /// llama.cpp's load chatter does not flood the output; then the library is loaded. Every use of LLamaSharp in a test
    /// process calls it before its first native call: the configuration can only be set before the library loads, so a
    /// test that loaded it directly would make this throw in whichever test ran next.
    /// </summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (_configured) return;
            // ModelParams' constructor and other LLamaSharp types load the library themselves; say which rule broke.
            if (NativeLibraryConfig.LLama.LibraryHasLoaded)
                throw new InvalidOperationException(
                    "llama.cpp was loaded before LlamaCpp.Configure ran: call it before creating any LLamaSharp object, ModelParams included");
            _configured = true;
            NativeLibraryConfig.All.WithLogCallback((level, message) =>
            {
                if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error) Console.Error.Write($"// llama.cpp: {message}");
            });
            // Loads the library through LLamaSharp's resolver: the quantizer's entry points do not trigger it themselves.
            NativeApi.llama_empty_call();
        }
    }
}
