using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>Element-wise sums of activations (residual connections, biases).</summary>
public static class Elementwise
{
    /// <summary>y[i] = a[i] + b[i]; <paramref name="y"/> may alias an input. Long spans are split over <paramref name="pool"/>.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, Isa? isa = null, WorkerPool? pool = null)
        => ElementwiseDriver.Map<AddOperator>(a, b, y, 0, isa, pool, nameof(a), nameof(b));

    /// <summary>Adds <paramref name="bias"/> to every row of <paramref name="y"/> (rows of bias.Length each).</summary>
    public static void AddBias(Span<float> y, ReadOnlySpan<float> bias, Isa? isa = null)
    {
        if (bias.IsEmpty || y.Length % bias.Length != 0) throw new ArgumentException($"y ({y.Length}) must hold whole rows of the bias ({bias.Length})", nameof(y));
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        KernelPath.Record(path); // also for an empty y, which runs no row
        ref float b = ref MemoryMarshal.GetReference(bias);
        for (int r = 0; r < y.Length; r += bias.Length)
        {
            ref float row = ref MemoryMarshal.GetReference(y.Slice(r, bias.Length));
            ElementwiseDriver.Map<AddOperator>(ref row, ref b, ref row, bias.Length, 0, path);
        }
    }
}

/// <summary>a + b (each element rounded once, so every width gives the same bits).</summary>
internal readonly struct AddOperator : IMapOperator
{
    public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> s) => a + b;
    public static Vector256<float> Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> s) => a + b;
    public static float Invoke(float a, float b, float s) => a + b;
}
