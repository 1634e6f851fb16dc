using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Qwen2.Kernels;

namespace Qwen2.Bench;

/// <summary>
/// Matrix-vector products y = W x at Qwen2-0.5B's shapes (MLP up/gate 4864x896, MLP down 896x4864, lm_head
/// 151936x896) with BF16, F16 and F32 weights: our kernel on the best path (one thread, and two through a
/// <see cref="WorkerPool"/>), its scalar twin, and the baseline, a row-by-row <see cref="TensorPrimitives.Dot(ReadOnlySpan{float}, ReadOnlySpan{float})"/>.
/// </summary>
/// <remarks>
/// TensorPrimitives has no BF16 or F16 dot product, so for those the baseline first widens each row into a float buffer
/// with public vectorized APIs (F16: <c>TensorPrimitives.ConvertToSingle</c>; BF16: <c>TensorPrimitives.ConvertTruncating</c>
/// ushort to uint, then <c>TensorPrimitives.ShiftLeft</c> by 16) and then calls Dot: one extra pass over a row that stays
/// in L1. The GB/s column is the weight bytes divided by the mean time.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(MatVecConfig))]
public unsafe class MatVecKernels
{
    private byte* _weights;
    private float[] _x = null!, _y = null!, _row = null!;
    private uint[] _rowBits = null!;
    private WeightMatrix _w;
    private WorkerPool _pool2 = null!;

    /// <summary>Rows x columns.</summary>
    [Params("4864x896", "896x4864", "151936x896")]
    public string Shape { get; set; } = "4864x896";

    /// <summary>Stored weight type.</summary>
    [Params(WeightType.BF16, WeightType.F16, WeightType.F32)]
    public WeightType Type { get; set; }

    /// <summary>Rows and columns of <paramref name="shape"/> ("RxC").</summary>
    internal static (int Rows, int Cols) Parse(string shape)
    {
        var parts = shape.Split('x');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Fills the weights with values in [-0.5, 0.5) in the chosen type, and the input with [0, 1).</summary>
    [GlobalSetup]
    public void Setup()
    {
        var (rows, cols) = Parse(Shape);
        long bytes = (long)rows * cols * WeightTypes.SizeOf(Type);
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var rng = new Random(7);
        long elements = (long)rows * cols;
        for (long i = 0; i < elements; i++)
        {
            float v = rng.NextSingle() - 0.5f;
            switch (Type)
            {
                case WeightType.F32: ((float*)_weights)[i] = v; break;
                case WeightType.F16: ((Half*)_weights)[i] = (Half)v; break;
                default: ((ushort*)_weights)[i] = (ushort)(BitConverter.SingleToInt32Bits(v) >> 16); break;
            }
        }
        _w = new WeightMatrix(_weights, rows, cols, Type);
        _x = Enumerable.Range(0, cols).Select(_ => rng.NextSingle()).ToArray();
        _y = new float[rows];
        _row = new float[cols];
        _rowBits = new uint[cols];
        _pool2 = new WorkerPool(2);
    }

    /// <summary>Frees the weights and the pool.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _pool2.Dispose();
        NativeMemory.AlignedFree(_weights);
    }

    /// <summary>The baseline: TensorPrimitives.Dot per row (BF16 and F16 rows widened first; see the remarks).</summary>
    [Benchmark(Baseline = true)]
    public void TensorPrimitivesDot()
    {
        int rows = _w.Rows, cols = _w.Cols;
        for (int r = 0; r < rows; r++)
        {
            var bytes = _w.RowBytesSpan(r);
            switch (Type)
            {
                case WeightType.F32:
                    _y[r] = TensorPrimitives.Dot(MemoryMarshal.Cast<byte, float>(bytes), _x);
                    break;
                case WeightType.F16:
                    TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), _row);
                    _y[r] = TensorPrimitives.Dot(_row, _x);
                    break;
                default:
                    TensorPrimitives.ConvertTruncating<ushort, uint>(MemoryMarshal.Cast<byte, ushort>(bytes), _rowBits);
                    TensorPrimitives.ShiftLeft<uint>(_rowBits, 16, _rowBits);
                    _y[r] = TensorPrimitives.Dot(MemoryMarshal.Cast<uint, float>(_rowBits.AsSpan(0, cols)), _x);
                    break;
            }
        }
    }

    /// <summary>Our kernel on <see cref="IsaSupport.Best"/>, one thread.</summary>
    [Benchmark]
    public void Ours1Thread() => MatMul.Multiply(_w, _x, _y, tokens: 1, pool: null, IsaSupport.Best);

    /// <summary>Our kernel on <see cref="IsaSupport.Best"/>, rows split over two threads.</summary>
    [Benchmark]
    public void Ours2Threads() => MatMul.Multiply(_w, _x, _y, tokens: 1, _pool2, IsaSupport.Best);

    /// <summary>The scalar twin: the same blocking, plain scalar loops.</summary>
    [Benchmark]
    public void Scalar() => MatMul.Multiply(_w, _x, _y, tokens: 1, pool: null, Isa.Scalar);
}

/// <summary>Read bandwidth of this machine (<see cref="MemoryBandwidth"/>) over 1 GiB, the ceiling of the matrix-vector rows.</summary>
[Config(typeof(MatVecConfig))]
public unsafe class ReadBandwidth
{
    /// <summary>Bytes read per operation.</summary>
    public const long Bytes = MemoryBandwidth.DefaultBufferBytes;

    private byte* _data;
    private WorkerPool _pool = null!;

    /// <summary>Reading threads.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Allocates and touches the buffer.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)Bytes, 4096);
        for (long i = 0; i < Bytes; i += 1 << 30) new Span<byte>(_data + i, (int)Math.Min(Bytes - i, 1 << 30)).Fill(0x5A);
        _pool = new WorkerPool(Threads);
    }

    /// <summary>Frees the buffer and the pool.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        NativeMemory.AlignedFree(_data);
    }

    /// <summary>One pass over the buffer, <see cref="MemoryBandwidth.StreamsPerThread"/> streams per thread.</summary>
    [Benchmark]
    public uint Read() => MemoryBandwidth.Read(_data, Bytes, _pool);
}

/// <summary>Adds the GB/s column to the kernel suites.</summary>
internal sealed class MatVecConfig : ManualConfig
{
    public MatVecConfig() => AddColumn(new GigabytesPerSecondColumn());
}

/// <summary>Bytes each operation reads (the weight matrix, or the bandwidth buffer) divided by its mean time, in GB/s.</summary>
internal sealed class GigabytesPerSecondColumn()
    : RateColumn("GB/s", "Bytes read per operation (weights or buffer) / mean time, in 1e9 bytes per second", 1e9, "F2")
{
    protected override double? AmountPerOperation(BenchmarkCase c) => BytesPerOperation(c);

    private static long? BytesPerOperation(BenchmarkCase c)
    {
        if (c.Descriptor.Type == typeof(ReadBandwidth)) return ReadBandwidth.Bytes;
        if (c.Parameters["Shape"] is string shape && c.Parameters["Type"] is WeightType type)
        {
            var (rows, cols) = MatVecKernels.Parse(shape);
            return (long)rows * cols * WeightTypes.SizeOf(type);
        }
        return null;
    }
}

/// <summary>
/// Matrix products of a small batch of tokens (a batched decode step) with BF16 weights on two threads: a matrix that
/// fits the last-level cache (4864×896, 8.7 MB) against the lm_head (151936×896, 272 MB) that streams from memory,
/// in GFLOP/s. The gap between the two at 8 and 16 tokens is what streaming the weights costs a compute-bound step.
/// </summary>
[Config(typeof(SmallBatchConfig))]
public unsafe class SmallBatchKernels
{
    private byte* _weights;
    private WeightMatrix _w;
    private float[] _x = null!, _y = null!;
    private WorkerPool _pool = null!;

    /// <summary>Rows x columns of the BF16 matrix.</summary>
    [Params("4864x896", "151936x896")]
    public string Shape { get; set; } = "";

    /// <summary>Tokens multiplied at once.</summary>
    [Params(1, 4, 8, 16)]
    public int Tokens { get; set; }

    /// <summary>Fills the weights and the inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var (rows, cols) = MatVecKernels.Parse(Shape);
        long elements = (long)rows * cols;
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)(elements * 2), 64);
        var rng = new Random(7);
        for (long i = 0; i < elements; i++) ((ushort*)_weights)[i] = (ushort)(BitConverter.SingleToInt32Bits(rng.NextSingle() - 0.5f) >> 16);
        _w = new WeightMatrix(_weights, rows, cols, WeightType.BF16);
        _x = Enumerable.Range(0, Tokens * cols).Select(_ => rng.NextSingle()).ToArray();
        _y = new float[Tokens * rows];
        _pool = new WorkerPool(2);
    }

    /// <summary>Frees the weights and the pool.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        NativeMemory.AlignedFree(_weights);
    }

    /// <summary>y = x · Wᵀ for all tokens, rows split over two threads.</summary>
    [Benchmark]
    public void Multiply() => MatMul.Multiply(_w, _x, _y, Tokens, _pool);
}

internal sealed class SmallBatchConfig : ManualConfig
{
    public SmallBatchConfig() => AddColumn(new GigaflopsColumn());
}

/// <summary>2 × rows × columns × tokens over the mean time, in 1e9 per second.</summary>
internal sealed class GigaflopsColumn() : RateColumn("GFLOP/s", "2 x rows x columns x tokens / mean time, in 1e9 per second", 1e9, "F1")
{
    protected override double? AmountPerOperation(BenchmarkCase c)
    {
        if (c.Parameters["Shape"] is not string shape || c.Parameters["Tokens"] is not int tokens) return null;
        var (rows, cols) = MatVecKernels.Parse(shape);
        return 2.0 * rows * cols * tokens;
    }
}
