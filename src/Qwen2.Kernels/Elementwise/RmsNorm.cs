using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>RMSNorm in float32: y = (x · 1/√(mean(x²) + eps)) · weight, row by row.</summary>
public static class RmsNorm
{
    /// <summary>Normalizes each of the <paramref name="rows"/> rows of <paramref name="x"/> (length weight.Length each) into <paramref name="y"/>.</summary>
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y, int rows, Isa? isa = null)
    {
        int d = weight.Length;
        if (x.Length < (long)rows * d) throw new ArgumentException($"x holds {x.Length} floats, {rows} x {d} needed", nameof(x));
        if (y.Length < (long)rows * d) throw new ArgumentException($"y holds {y.Length} floats, {rows} x {d} needed", nameof(y));
        var path = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best));
        ref float w = ref MemoryMarshal.GetReference(weight);
        for (int r = 0; r < rows; r++)
        {
            ref float xr = ref MemoryMarshal.GetReference(x.Slice(r * d, d));
            float inv = 1f / MathF.Sqrt(ElementwiseDriver.Reduce<SquareSumOperator>(ref xr, d, path) / d + eps);
            ElementwiseDriver.Map<ScaleOperator>(ref xr, ref w, ref MemoryMarshal.GetReference(y.Slice(r * d, d)), d, inv, path);
        }
    }
}

/// <summary>Σ x²: one fused multiply-add accumulator over full vectors, its sum, then s += x·x over the tail.</summary>
internal readonly struct SquareSumOperator : IReduceOperator
{
    public static float Identity => 0;
    public static Vector512<float> Accumulate(Vector512<float> acc, Vector512<float> x) => Vector512.FusedMultiplyAdd(x, x, acc);
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> x) => Vector256.FusedMultiplyAdd(x, x, acc);
    public static float Accumulate(float acc, float x) => acc + x * x;
    public static float Total(Vector512<float> acc) => Vector512.Sum(acc);
    public static float Total(Vector256<float> acc) => Vector256.Sum(acc);
}

/// <summary>x · inv · w, multiplied in that order.</summary>
internal readonly struct ScaleOperator : IMapOperator
{
    public static Vector512<float> Invoke(Vector512<float> x, Vector512<float> w, Vector512<float> inv) => x * inv * w;
    public static Vector256<float> Invoke(Vector256<float> x, Vector256<float> w, Vector256<float> inv) => x * inv * w;
    public static float Invoke(float x, float w, float inv) => x * inv * w;
}
