using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Qwen2.Kernels;

namespace Qwen2.Bench;

/// <summary>
/// Matrix products over ggml block-quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) at the Qwen2-0.5B
/// shapes (MLP 4864x896 and 896x4864, lm_head 151936x896) and the Qwen2-1.5B MLP shapes (8960x1536, 1536x8960, rows
/// multiples of 256 so the K-quants apply), each type on the shapes whose rows hold whole blocks of it: our integer
/// kernel on the best path (one and two threads), its scalar twin, and a baseline that dequantizes each row with
/// <see cref="WeightTypes.ToSingle"/> and calls <see cref="TensorPrimitives.Dot(ReadOnlySpan{float}, ReadOnlySpan{float})"/>.
/// One token is decode (GB/s of weights read); 64 and 512 are prefill (GFLOP/s).
/// </summary>
/// <remarks>
/// The blocks hold random bits with scales set to small normal binary16 values (no infinity or NaN); speed does not
/// depend on the values otherwise (scales, subnormals included, are read from a table).
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(QuantizedConfig))]
public unsafe class QuantizedKernels
{
    private byte* _weights;
    private float[] _x = null!, _y = null!, _row = null!;
    private WeightMatrix _w;
    private WorkerPool _pool2 = null!;

    /// <summary>"TYPE RxC TOKENS": a quantized type, a shape its rows fit, and the tokens multiplied at once.</summary>
    [ParamsSource(nameof(Cases))]
    public string Case { get; set; } = "Q8_0 4864x896 1";

    private int Tokens => Parse(Case).Tokens;

    /// <summary>Every type on every shape whose columns are whole blocks of it: one token, and 64 and 512 for the MLP shapes.</summary>
    public static IEnumerable<string> Cases()
    {
        WeightType[] types = [WeightType.Q8_0, WeightType.Q4_0, WeightType.Q4_1, WeightType.Q5_0, WeightType.Q5_1, WeightType.Q4_K, WeightType.Q5_K, WeightType.Q6_K];
        string[] shapes = ["4864x896", "896x4864", "151936x896", "8960x1536", "1536x8960"];
        foreach (var type in types)
            foreach (string shape in shapes)
            {
                if (MatVecKernels.Parse(shape).Cols % WeightTypes.BlockSize(type) != 0) continue;
                yield return $"{type} {shape} 1";
                if (!shape.StartsWith("151936", StringComparison.Ordinal)) // the lm_head runs once per prompt, for its last token
                    foreach (int tokens in new[] { 64, 512 }) yield return $"{type} {shape} {tokens}";
            }
    }

    /// <summary>The type, shape and token count of a <see cref="Case"/>.</summary>
    internal static (WeightType Type, int Rows, int Cols, int Tokens) Parse(string c)
    {
        var parts = c.Split(' ');
        var (rows, cols) = MatVecKernels.Parse(parts[1]);
        return (Enum.Parse<WeightType>(parts[0]), rows, cols, int.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    /// <summary>Byte offsets of a block's binary16 scales (ggml's block layouts).</summary>
    private static int[] Scales(WeightType type) => type switch
    {
        WeightType.Q4_1 or WeightType.Q5_1 or WeightType.Q4_K or WeightType.Q5_K => [0, 2],
        WeightType.Q6_K => [208],
        _ => [0],
    };

    /// <summary>Random blocks with small normal scales, and inputs in [-1, 1).</summary>
    [GlobalSetup]
    public void Setup()
    {
        var (type, rows, cols, _) = Parse(Case);
        long bytes = WeightTypes.ByteCount(type, (long)rows * cols);
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var rng = new Random(7);
        rng.NextBytes(new Span<byte>(_weights, checked((int)bytes)));
        int blockBytes = WeightTypes.BlockBytes(type);
        for (long b = 0; b < bytes / blockBytes; b++)
            foreach (int at in Scales(type))
                *(Half*)(_weights + b * blockBytes + at) = (Half)(0.001f + 0.01f * rng.NextSingle());
        _w = new WeightMatrix(_weights, rows, cols, type);
        _x = Enumerable.Range(0, Tokens * cols).Select(_ => 2 * rng.NextSingle() - 1).ToArray();
        _y = new float[Tokens * rows];
        _row = new float[cols];
        _pool2 = new WorkerPool(2);
    }

    /// <summary>Frees the weights and the pool.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _pool2.Dispose();
        NativeMemory.AlignedFree(_weights);
    }

    /// <summary>The baseline: each row dequantized into a float buffer, then TensorPrimitives.Dot with every token.</summary>
    [Benchmark(Baseline = true)]
    public void DequantizeThenDot()
    {
        int rows = _w.Rows, cols = _w.Cols;
        for (int r = 0; r < rows; r++)
        {
            WeightTypes.ToSingle(_w.Type, _w.RowBytesSpan(r), _row);
            for (int t = 0; t < Tokens; t++) _y[t * rows + r] = TensorPrimitives.Dot(_row, _x.AsSpan(t * cols, cols));
        }
    }

    /// <summary>Our kernel on <see cref="IsaSupport.Best"/>, one thread.</summary>
    [Benchmark]
    public void Ours1Thread() => MatMul.Multiply(_w, _x, _y, Tokens, pool: null, IsaSupport.Best);

    /// <summary>Our kernel on <see cref="IsaSupport.Best"/>, rows split over two threads.</summary>
    [Benchmark]
    public void Ours2Threads() => MatMul.Multiply(_w, _x, _y, Tokens, _pool2, IsaSupport.Best);

    /// <summary>The scalar twin.</summary>
    [Benchmark]
    public void Scalar() => MatMul.Multiply(_w, _x, _y, Tokens, pool: null, Isa.Scalar);
}

/// <summary>GB/s of weights read and GFLOP/s for <see cref="QuantizedKernels"/>.</summary>
internal sealed class QuantizedConfig : ManualConfig
{
    public QuantizedConfig()
    {
        AddColumn(new QuantizedBytesColumn());
        AddColumn(new QuantizedFlopsColumn());
    }

    private static (WeightType Type, int Rows, int Cols, int Tokens)? Of(BenchmarkCase c) =>
        c.Parameters["Case"] is string s ? QuantizedKernels.Parse(s) : null;

    private sealed class QuantizedBytesColumn() : RateColumn("GB/s", "Weight bytes read per operation / mean time, in 1e9 bytes per second", 1e9, "F2")
    {
        protected override double? AmountPerOperation(BenchmarkCase c) => Of(c) is var (type, rows, cols, _) ? WeightTypes.ByteCount(type, (long)rows * cols) : null;
    }

    private sealed class QuantizedFlopsColumn() : RateColumn("GFLOP/s", "2 x rows x columns x tokens / mean time, in 1e9 per second", 1e9, "F1")
    {
        protected override double? AmountPerOperation(BenchmarkCase c) => Of(c) is var (_, rows, cols, tokens) ? 2.0 * rows * cols * tokens : null;
    }
}
