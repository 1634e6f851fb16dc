using BenchmarkDotNet.Attributes;
using Qwen2.Kernels;

namespace Qwen2.Bench;

/// <summary>Matrix-vector products at Qwen2-0.5B's shapes, per weight type and kernel path.</summary>
[MemoryDiagnoser]
public unsafe class MatVecKernels
{
    private byte* _weights;
    private float[] _x = null!, _y = null!;
    private WeightMatrix _w;

    /// <summary>Rows x columns.</summary>
    [Params("4864x896", "896x4864")]
    public string Shape { get; set; } = "4864x896";

    /// <summary>Stored weight type.</summary>
    [Params(WeightType.BF16, WeightType.F32)]
    public WeightType Type { get; set; }

    /// <summary>Kernel path.</summary>
    [Params(Isa.Scalar, Isa.Vector256, Isa.Vector512)]
    public Isa Path { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        int rows = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), cols = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        long bytes = (long)rows * cols * WeightTypes.SizeOf(Type);
        _weights = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 64);
        var rng = new Random(7);
        var span = new Span<byte>(_weights, checked((int)bytes));
        if (Type == WeightType.F32) foreach (ref float f in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(span)) f = (float)rng.NextDouble() - 0.5f;
        else foreach (ref ushort h in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(span)) h = (ushort)(BitConverter.SingleToInt32Bits((float)rng.NextDouble() - 0.5f) >> 16);
        _w = new WeightMatrix(_weights, rows, cols, Type);
        _x = Enumerable.Range(0, cols).Select(_ => (float)rng.NextDouble()).ToArray();
        _y = new float[rows];
    }

    [GlobalCleanup]
    public void Cleanup() => System.Runtime.InteropServices.NativeMemory.AlignedFree(_weights);

    /// <summary>y = W x on one thread.</summary>
    [Benchmark]
    public void MatVec()
    {
        if (!IsaSupport.IsSupported(Path)) return;
        MatMul.Multiply(_w, _x, _y, 1, null, Path);
    }
}
