using LLama;
using LLama.Native;
using Qwen2.Native;

namespace Qwen2.Bench;

/// <summary>
/// What the peer suites time, for both engines: prefill of a prompt from an empty cache, and one-token decode steps
/// after a 64-token prompt; fixed token ids go in, the last position's logits come out, no sampling.
/// The suites' shared configuration (one short job, tokens/s, grouped by operation) is declared here and inherited.
/// </summary>
[BenchmarkDotNet.Attributes.Config(typeof(PeersConfig))]
[BenchmarkDotNet.Attributes.CategoriesColumn]
[BenchmarkDotNet.Attributes.GroupBenchmarksBy(BenchmarkDotNet.Configs.BenchmarkLogicalGroupRule.ByCategory)]
public abstract class PeerRuns
{
    internal const int PromptTokens = 64, LongPromptTokens = 512, DecodeSteps = 128, ContextTokens = 1024;

    private Qwen2Model? _ours;
    private PastKeyValues? _cache;
    private float[] _logits = null!;
    private LLamaWeights? _llamaWeights;
    private LLamaContext? _llama;
    private readonly LLamaBatch _batch = new();
    private int[] _tokens = null!;

    /// <summary>Threads for both engines.</summary>
    [BenchmarkDotNet.Attributes.Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Loads our model from <paramref name="path"/> (a checkpoint directory or a GGUF file).</summary>
    protected void LoadOurs(string path)
    {
        _tokens = PeersModel.Tokens(LongPromptTokens + DecodeSteps);
        _ours = Qwen2Model.Load(path, new ModelOptions { Threads = Threads });
        _cache = _ours.CreateCache(ContextTokens);
        _logits = new float[_ours.Config.VocabSize];
    }

    /// <summary>Loads <paramref name="gguf"/> into llama.cpp with its defaults (flash attention auto, F16 KV cache).</summary>
    protected void LoadLlama(string gguf)
    {
        _tokens = PeersModel.Tokens(LongPromptTokens + DecodeSteps);
        (_llamaWeights, _llama) = PeersModel.LoadLlama(gguf, Threads, exact: false);
    }

    /// <summary>Empties our cache.</summary>
    protected void ResetOursCache() => _cache!.Reset();

    /// <summary>Empties our cache, then runs the prompt.</summary>
    protected void PromptOursCache()
    {
        _cache!.Reset();
        OursPrefill(PromptTokens);
    }

    /// <summary>Clears llama.cpp's KV cache.</summary>
    protected void ResetLlamaCache() => _llama!.NativeHandle.MemoryClear(true);

    /// <summary>Clears llama.cpp's KV cache, then runs the prompt.</summary>
    protected void PromptLlamaCache()
    {
        _llama!.NativeHandle.MemoryClear(true);
        LlamaPrefill(PromptTokens);
    }

    /// <summary>Ours: <paramref name="n"/> tokens in one forward call.</summary>
    protected void OursPrefill(int n) => _ours!.ForwardInto(_tokens.AsSpan(0, n), _cache, _logits, LogitsSelection.Last);

    /// <summary>Ours: <see cref="DecodeSteps"/> one-token steps after the prompt.</summary>
    protected void OursDecode()
    {
        for (int i = 0; i < DecodeSteps; i++)
            _ours!.ForwardInto(_tokens.AsSpan(PromptTokens + i, 1), _cache, _logits, LogitsSelection.Last);
    }

    /// <summary>llama.cpp: <paramref name="n"/> tokens in one batch.</summary>
    protected void LlamaPrefill(int n)
    {
        _batch.Clear();
        for (int i = 0; i < n; i++) _batch.Add((LLamaToken)_tokens[i], i, LLamaSeqId.Zero, i == n - 1);
        PeersModel.Check(_llama!.Decode(_batch));
    }

    /// <summary>llama.cpp: <see cref="DecodeSteps"/> one-token steps after the prompt.</summary>
    protected void LlamaDecode()
    {
        for (int i = 0; i < DecodeSteps; i++)
        {
            _batch.Clear();
            _batch.Add((LLamaToken)_tokens[PromptTokens + i], PromptTokens + i, LLamaSeqId.Zero, true);
            PeersModel.Check(_llama!.Decode(_batch));
        }
    }

    /// <summary>Releases whatever the setup loaded.</summary>
    [BenchmarkDotNet.Attributes.GlobalCleanup]
    public void Cleanup()
    {
        _ours?.Dispose();
        _llama?.Dispose();
        _llamaWeights?.Dispose();
    }
}
