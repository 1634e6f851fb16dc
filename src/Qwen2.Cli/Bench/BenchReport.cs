using System.Text.Json.Serialization;
using Qwen2.Kernels;

namespace Qwen2.Cli;

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
    /// <summary>Batched decode at each size asked for with --batch; absent otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<BatchReport>? Batches { get; init; }
}
