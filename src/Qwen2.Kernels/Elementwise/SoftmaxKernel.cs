using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// The vector paths of <see cref="Activations.Softmax"/>: the maximum, e^(x − max) with the width's Exp on every
/// element (the scalar Exp only below four elements), the sum, and the division. The sum adds in exactly the order
/// System.Numerics.Tensors' TensorPrimitives.Sum uses at that width (one accumulator; above eight vectors the first
/// vector is skipped, eight-vector blocks are added, then the first vector, the remaining full vectors and the masked
/// last one; below one vector a 256-, 128-bit or reversed scalar sum), so the results are the bits the previous
/// TensorPrimitives-based kernel gave on AVX-512 (Vector512) and with AVX-512 disabled (Vector256), and model logits
/// did not change when the kernel began to honour the requested path.
/// </summary>
internal static class SoftmaxKernel
{
    public static void Run(Span<float> x, Isa isa)
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        float max = ElementwiseDriver.Reduce<MaxOperator>(ref p, n, isa);
        if (n < 4)
            for (int i = 0; i < n; i++) Unsafe.Add(ref p, i) = MathF.Exp(Unsafe.Add(ref p, i) - max);
        else ElementwiseDriver.Map<ExpShiftedOperator>(ref p, ref p, ref p, n, max, isa);
        float sum = isa == Isa.Vector512 ? Sum<Width512, Vector512<float>>(ref p, n) : Sum<Width256, Vector256<float>>(ref p, n);
        ElementwiseDriver.Map<DivideOperator>(ref p, ref p, ref p, n, sum, isa);
    }

    /// <summary>Σ x[0..n) in TensorPrimitives.Sum's order for width <typeparamref name="TW"/>.</summary>
    internal static float Sum<TW, TV>(ref float x, nint n) where TW : IVectorWidth<TV> where TV : struct
    {
        nint c = TW.Count;
        if (n < c) return SumSmall(ref x, n);
        TV acc = default, beg = TW.Load(ref x, 0), end = TW.Load(ref x, n - c);
        nint i = 0, rest = n;
        bool skippedFirst = n > 8 * c;
        if (skippedFirst)
        {
            i = c; rest -= c;
            for (; rest >= 8 * c; i += 8 * c, rest -= 8 * c)
                for (nint k = 0; k < 8; k++) acc = TW.Add(acc, TW.Load(ref x, i + k * c));
        }
        acc = TW.Add(acc, beg);
        nint trailing = rest % c, blocks = rest / c - (skippedFirst ? 0 : 1), stop = i + rest - trailing;
        for (nint b = blocks; b >= 1; b--) acc = TW.Add(acc, TW.Load(ref x, stop - b * c));
        return TW.Sum(TW.Add(acc, TW.LastLanes(end, (int)trailing)));
    }

    /// <summary>Fewer elements than one vector: two overlapping 256- or 128-bit vectors (the second masked), or a scalar sum from the last element back.</summary>
    private static float SumSmall(ref float x, nint n)
    {
        if (n >= 8) return SumTwo<Width256, Vector256<float>>(ref x, n);
        if (n >= 4) return SumTwo<Width128, Vector128<float>>(ref x, n);
        float s = 0;
        for (nint i = n - 1; i >= 0; i--) s += Unsafe.Add(ref x, i);
        return s;
    }

    private static float SumTwo<TW, TV>(ref float x, nint n) where TW : IVectorWidth<TV> where TV : struct
    {
        var beg = TW.Load(ref x, 0);
        return n == TW.Count ? TW.Sum(beg) : TW.Sum(TW.Add(beg, TW.LastLanes(TW.Load(ref x, n - TW.Count), (int)(n % TW.Count))));
    }
}

/// <summary>The maximum; NaN as soon as one element is NaN.</summary>
internal readonly struct MaxOperator : IReduceOperator
{
    public static float Identity => float.NegativeInfinity;
    public static Vector512<float> Accumulate(Vector512<float> acc, Vector512<float> x) => Vector512.Max(acc, x);
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> x) => Vector256.Max(acc, x);
    public static float Accumulate(float acc, float x) => MathF.Max(acc, x);
    public static float Total(Vector512<float> acc) => Total(Vector256.Max(acc.GetLower(), acc.GetUpper()));
    public static float Total(Vector256<float> acc)
    {
        float m = acc.GetElement(0);
        for (int k = 1; k < Vector256<float>.Count; k++) m = MathF.Max(m, acc.GetElement(k));
        return m;
    }
}

/// <summary>e^(a − s); the width's own Exp on every element of a vector path, tails included.</summary>
internal readonly struct ExpShiftedOperator : IMapOperator
{
    public static bool VectorTail => true;
    public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> s) => Vector512.Exp(a - s);
    public static Vector256<float> Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> s) => Vector256.Exp(a - s);
    public static float Invoke(float a, float b, float s) => MathF.Exp(a - s);
}

/// <summary>a / s.</summary>
internal readonly struct DivideOperator : IMapOperator
{
    public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> s) => a / s;
    public static Vector256<float> Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> s) => a / s;
    public static float Invoke(float a, float b, float s) => a / s;
}
