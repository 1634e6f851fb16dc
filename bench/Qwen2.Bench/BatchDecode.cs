using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Qwen2.Native;

namespace Qwen2.Bench;

/// <summary>
/// Batched decode over a paged KV cache (<see cref="BatchingKvCache"/>): one operation is one step that runs a token
/// for each of <see cref="Batch"/> sequences through the weights once (<see cref="Qwen2Model.ForwardBatchInto"/>).
/// The sequences' prompts have mixed lengths (about 1/2, 3/4, 1 and 5/4 of 64 tokens, off the block size); each step
/// is rewound afterwards (an O(1) bookkeeping change), so every operation does the same work at the same lengths.
/// The tokens/s column counts all sequences; "vs batch 1" divides it by the batch-1 row's.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BatchDecodeConfig))]
[WarmupCount(3), IterationCount(10)]
public class BatchDecode
{
    /// <summary>Prompt length the mixed lengths are drawn around.</summary>
    public const int PromptTokens = 64;

    private Qwen2Model _model = null!;
    private BatchingKvCache _cache = null!;
    private BatchInput[] _inputs = null!;
    private float[] _logits = null!;

    /// <summary>Sequences decoded together.</summary>
    [Params(1, 2, 4, 8, 16)]
    public int Batch { get; set; }

    /// <summary>Loads the checkpoint and runs every prompt in one batched prefill.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _model = Qwen2Model.Load(BenchCheckpoint.Resolve());
        int vocab = _model.Config.VocabSize;
        _cache = new BatchingKvCache(_model);
        var sequences = Enumerable.Range(0, Batch).Select(_ => _cache.Join()).ToArray();
        var prompts = Enumerable.Range(0, Batch).Select(i =>
            Enumerable.Range(0, PromptTokens * (2 + i % 4) / 4 + i % 7).Select(t => (int)((t * 2654435761L + 17 + 7919L * i) % vocab)).ToArray()).ToArray();
        _logits = new float[(long)Batch * vocab];
        _model.ForwardBatchInto(prompts.Select((p, i) => new BatchInput(p, sequences[i])).ToArray(), _logits);
        _inputs = sequences.Select((s, i) => new BatchInput(new[] { (int)((i * 40503L + 11) % vocab) }, s)).ToArray();
        DecodeStep(); // a sequence whose prompt fills its last block takes a new one here, not inside a measured operation
    }

    /// <summary>Releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    /// <summary>One decode step of the whole batch, then rewound.</summary>
    [Benchmark]
    public void DecodeStep()
    {
        _model.ForwardBatchInto(_inputs, _logits);
        foreach (var input in _inputs) input.Cache!.Rewind(1);
    }
}

internal sealed class BatchDecodeConfig : ManualConfig
{
    public BatchDecodeConfig()
    {
        AddColumn(new BatchTokensPerSecondColumn());
        AddColumn(new SpeedupOverBatch1Column());
    }
}

/// <summary>Decode tokens per second over all the batch's sequences: Batch / mean step time.</summary>
internal sealed class BatchTokensPerSecondColumn()
    : RateColumn("tokens/s", "Decode tokens per second, all sequences of the batch together (Batch / mean)", 1, "F1")
{
    protected override double? AmountPerOperation(BenchmarkCase c) => c.Parameters["Batch"] is int batch ? batch : null;
}

/// <summary>A row's tokens/s over the batch-1 row's, from the same run.</summary>
internal sealed class SpeedupOverBatch1Column : IColumn
{
    public string Id => nameof(SpeedupOverBatch1Column);
    public string ColumnName => "vs batch 1";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Total decode tokens/s over the Batch=1 row's, measured in the same run";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var single = summary.BenchmarksCases.FirstOrDefault(c => c.Parameters["Batch"] is 1);
        if (single is null || benchmarkCase.Parameters["Batch"] is not int batch) return "-";
        double? mean = summary[benchmarkCase]?.ResultStatistics?.Mean, baseline = summary[single]?.ResultStatistics?.Mean;
        if (mean is not > 0 || baseline is not > 0) return "-";
        return (batch / mean.Value / (1 / baseline.Value)).ToString("F2", CultureInfo.InvariantCulture) + "x";
    }
}

/// <summary>
/// One sequence's decode step over a context of <see cref="Context"/> tokens held in a preallocated ring
/// (<see cref="RingKvCache"/>, keys contiguous) against the same tokens in a paged cache (blocks of 16 from a pool):
/// what reading keys and values through a block table costs attention. The step is rewound after each operation.
/// </summary>
[MemoryDiagnoser]
[WarmupCount(3), IterationCount(10)]
public class PagedVsRing
{
    private Qwen2Model _model = null!;
    private PastKeyValues _ring = null!, _paged = null!;
    private float[] _logits = null!;
    private readonly int[] _token = [42];

    /// <summary>Tokens already in the cache.</summary>
    [Params(256, 2048)]
    public int Context { get; set; }

    /// <summary>Fills both caches with the same prompt.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _model = Qwen2Model.Load(BenchCheckpoint.Resolve());
        int vocab = _model.Config.VocabSize;
        var prompt = Enumerable.Range(0, Context).Select(t => (int)((t * 2654435761L + 17) % vocab)).ToArray();
        _logits = new float[vocab];
        _ring = _model.CreateCache(Context + 1);
        _paged = new BatchingKvCache(_model).Join();
        _model.ForwardInto(prompt, _ring, _logits);
        _model.ForwardInto(prompt, _paged, _logits);
        Paged(); // the paged cache's next block, if the prompt filled its last one, is taken here
    }

    /// <summary>Releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    /// <summary>Decode step, keys and values in one contiguous ring.</summary>
    [Benchmark(Baseline = true)]
    public void Ring()
    {
        _model.ForwardInto(_token, _ring, _logits);
        _ring.Rewind(1);
    }

    /// <summary>Decode step, keys and values in 16-token blocks through a block table.</summary>
    [Benchmark]
    public void Paged()
    {
        _model.ForwardInto(_token, _paged, _logits);
        _paged.Rewind(1);
    }
}
