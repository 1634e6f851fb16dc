// Embeddings: Qwen2Managed's Qwen2EmbeddingGenerator against llama.cpp's pooled embeddings (LLamaSharp 0.30.0, CPU
// backend, pooling LAST as the file says), both on the same F16 GGUF of a Qwen3-Embedding checkpoint.
//
//   dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*Embeddings*'
//   QWEN2_BENCH_EMBED_SHAPE=tiny-qwen3-embedding ... --job dry     a quick functional run
//
// The checkpoint is a synthesized Qwen3-Embedding-0.6B (BF16, base-model names, no head, sentence-transformers' files,
// the <|endoftext|>-appending tokenizer) under ~/.cache/qwen2managed, exported once to F16 GGUF (pooling_type 3). One
// operation embeds 8 texts of 32 tokens each (the last one <|endoftext|>), all in one forward call / one llama.cpp batch
// of 8 sequences. The setup checks that the two engines' vectors agree (cosine printed; it fails below 0.999).
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
using Qwen2.Native.Embeddings;
using Qwen2.Native.Generation;
using Qwen2.Native.Gguf;
using Qwen2.Reference;

namespace Qwen2.Bench;

/// <summary>Batched embeddings of 8 × 32 tokens, Qwen2Managed against llama.cpp on one F16 GGUF, 1 and 2 threads.</summary>
[Config(typeof(EmbeddingsConfig))]
public class Embeddings
{
    internal const int Texts = 8, TokensPerText = 32;

    private Qwen2Pipeline? _pipeline;
    private Qwen2EmbeddingGenerator? _ours;
    private LLamaWeights? _llamaWeights;
    private LLamaContext? _llama;
    private readonly LLamaBatch _batch = new();
    private int[][] _inputs = null!;

    /// <summary>Threads for both engines: 1 and 2, or the comma-separated list in QWEN2_BENCH_THREADS.</summary>
    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    /// <summary>The values <see cref="Threads"/> takes.</summary>
    public static IEnumerable<int> ThreadCounts() => PeerRuns.ThreadCounts();

    /// <summary>The F16 GGUF of the synthesized embedding checkpoint, written on first use.</summary>
    internal static string Gguf()
    {
        var shape = SyntheticShape.Get(Environment.GetEnvironmentVariable("QWEN2_BENCH_EMBED_SHAPE") is { Length: > 0 } s ? s : SyntheticShape.Qwen3Embedding_0_6B.Name);
        string dir = Path.Combine(PeersModel.CacheRoot(), $"embed-{shape.Name}-bf16");
        string gguf = Path.Combine(PeersModel.CacheRoot(), "peers-gguf", $"embed-{shape.Name}-f16.gguf");
        if (File.Exists(gguf)) return gguf;
        Console.WriteLine($"// synthesizing {shape.Name} into {dir}");
        SyntheticCheckpoint.Write(dir, shape, WeightType.BF16, seed: 0, overwrite: true);
        string json = Path.Combine(dir, "tokenizer.json");
        using (var input = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(PeersModel.RepoRoot(), "src", "Qwen2.Cli", "Assets", "tokenizer", "qwen2.5", "tokenizer.json.gz")), System.IO.Compression.CompressionMode.Decompress))
        using (var output = File.Create(json))
            input.CopyTo(output);
        File.Copy(Path.Combine(PeersModel.RepoRoot(), "src", "Qwen2.Cli", "Assets", "tokenizer", "qwen2.5", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"), overwrite: true);
        SyntheticCheckpoint.AddEmbeddingTemplate(json);
        Directory.CreateDirectory(Path.GetDirectoryName(gguf)!);
        GgufExporter.Export(dir, gguf, GgufFileType.F16);
        Directory.Delete(dir, recursive: true); // the GGUF is what both engines read
        return gguf;
    }

    private int[][] Inputs()
    {
        var ids = PeersModel.Tokens(Texts * (TokensPerText - 1));
        return Enumerable.Range(0, Texts).Select(i => ids.AsSpan(i * (TokensPerText - 1), TokensPerText - 1).ToArray().Append(151643).ToArray()).ToArray();
    }

    /// <summary>Loads the file into our engine and checks our vectors against llama.cpp's.</summary>
    [GlobalSetup(Target = nameof(Ours))]
    public void SetupOurs()
    {
        string gguf = Gguf();
        _inputs = Inputs();
        _pipeline = Qwen2Pipeline.FromPretrained(gguf, new ModelOptions { Threads = Threads });
        _ours = new Qwen2EmbeddingGenerator(_pipeline);
        var ours = _ours.Embed(_inputs[..1])[0];
        var llama = LlamaCpp.Embedding(gguf, _inputs[0], Threads);
        double cosine = ours.Zip(llama, (a, b) => (double)a * b).Sum();
        Console.WriteLine($"// cosine of our embedding and llama.cpp's on the F16 file: {cosine:F6}");
        if (cosine < 0.999) throw new InvalidOperationException($"our embedding and llama.cpp's disagree (cosine {cosine}): a wrong load, not rounding");
    }

    /// <summary>Loads the file into llama.cpp: embeddings on, its pooling from the file, room for 8 sequences.</summary>
    [GlobalSetup(Target = nameof(Llama))]
    public void SetupLlama()
    {
        string gguf = Gguf();
        _inputs = Inputs();
        LlamaCpp.Configure();
        var p = new ModelParams(gguf)
        {
            ContextSize = Texts * TokensPerText, BatchSize = Texts * TokensPerText, UBatchSize = Texts * TokensPerText, SeqMax = Texts,
            Threads = Threads, BatchThreads = Threads, GpuLayerCount = 0, Embeddings = true,
        };
        _llamaWeights = LLamaWeights.LoadFromFile(p);
        _llama = _llamaWeights.CreateContext(p);
    }

    /// <summary>Ours: the 8 texts in one batched forward call, pooled and normalised.</summary>
    [Benchmark(Baseline = true)]
    public float[][] Ours() => _ours!.Embed(_inputs);

    /// <summary>llama.cpp: the 8 texts as 8 sequences of one batch, each sequence's pooled embedding read back.</summary>
    [Benchmark]
    public float[][] Llama()
    {
        _llama!.NativeHandle.MemoryClear(true);
        _batch.Clear();
        for (int s = 0; s < Texts; s++)
            for (int i = 0; i < TokensPerText; i++) _batch.Add((LLamaToken)_inputs[s][i], i, (LLamaSeqId)s, i == TokensPerText - 1);
        LlamaCpp.Check(_llama.Decode(_batch));
        var result = new float[Texts][];
        for (int s = 0; s < Texts; s++) result[s] = _llama.NativeHandle.GetEmbeddingsSeq((LLamaSeqId)s).ToArray();
        return result;
    }

    /// <summary>Frees both engines.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _pipeline?.Dispose();
        _llama?.Dispose();
        _llamaWeights?.Dispose();
    }
}

/// <summary>The peer suites' short schedule, with tokens per second over the 8 × 32 tokens of an operation.</summary>
internal sealed class EmbeddingsConfig : ManualConfig
{
    public EmbeddingsConfig()
    {
        AddJob(Job.Default.WithId("Embeddings").WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(5));
        AddColumn(new EmbeddedTokensColumn());
        AddColumn(StatisticColumn.Min);
    }
}

/// <summary>Tokens per second from the mean time: 8 texts of 32 tokens per operation.</summary>
internal sealed class EmbeddedTokensColumn()
    : RateColumn("tok/s", "Tokens embedded per second: 8 × 32 over the mean time", 1, "F1")
{
    protected override double? AmountPerOperation(BenchmarkCase c) => Embeddings.Texts * Embeddings.TokensPerText;
}
