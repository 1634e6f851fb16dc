namespace Qwen2.Cli;

/// <summary>One batch size of <c>qwen2 bench --batch</c>.</summary>
internal sealed class BatchReport
{
    /// <summary>Sequences decoded together.</summary>
    public int Batch { get; init; }
    /// <summary>Each sequence's prompt length.</summary>
    public required int[] PromptTokens { get; init; }
    /// <summary>All prompts in one batched forward.</summary>
    public double PrefillTokensPerS { get; init; }
    /// <summary>Median decode tokens per second over all sequences.</summary>
    public double DecodeTokensPerS { get; init; }
    /// <summary>Slowest run.</summary>
    public double DecodeTokensPerSMin { get; init; }
    /// <summary>Fastest run.</summary>
    public double DecodeTokensPerSMax { get; init; }
    /// <summary>Decode tokens per second each sequence sees.</summary>
    public double PerSequenceTokensPerS { get; init; }
    /// <summary>Total decode rate over batch 1's, measured in the same run (absent when 1 is not among the sizes).</summary>
    public double? SpeedupOverBatch1 { get; init; }
    /// <summary>Weight bytes read per second: one pass over the weights per step.</summary>
    public double WeightGbPerS { get; init; }
    /// <summary>Matrix-product arithmetic per second (2 x multiply-adds), the bound once the batch is large.</summary>
    public double MatMulGflopPerS { get; init; }
    /// <summary>Tokens in the caches at the end.</summary>
    public long KvTokensHeld { get; init; }
    /// <summary>Keys and values of exactly those tokens.</summary>
    public long KvExactBytes { get; init; }
    /// <summary>The paged pool's blocks in use.</summary>
    public long KvPagedBytes { get; init; }
    /// <summary>A padded batch: every sequence as long as the longest.</summary>
    public long KvPaddedBytes { get; init; }
    /// <summary>A preallocated ring cache per sequence at the default capacity.</summary>
    public long KvReservedRingBytes { get; init; }
    /// <summary>Tokens per block of the paged pool.</summary>
    public int KvBlockSize { get; init; }
}
