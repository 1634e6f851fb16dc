using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// The vector paths of <see cref="Activations.Softmax"/>: the maximum, e^(x − max) with the width's Exp on every
/// element (the scalar Exp only below four elements), the sum, and the division. The sum adds in exactly the order
/// System.Numerics.Tensors' TensorPrimitives.Sum uses at that width (one accumulator; above eight vectors the first
/// vector is skipped, eight-vector blocks are added, then the first vector, the remaining full vectors and the masked
/// last one; below one vector a 256-, 128-bit or reversed scalar sum), so that the bits stay those of the previous
/// TensorPrimitives-based kernel. On the Vector256 path that was checked bit for bit against TensorPrimitives with
/// AVX-512 disabled, and model logits did not change; the Vector512 path follows the same order with 16 lanes but has
/// not yet been compared on AVX-512 hardware.
/// </summary>
internal static class SoftmaxKernel
{
    public static void Run(Span<float> x, Isa isa)
    {
        KernelPath.Record(isa);
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        float max = ElementwiseDriver.Reduce<MaxOperator>(ref p, n, isa);
        if (n < 4)
            for (int i = 0; i < n; i++) Unsafe.Add(ref p, i) = MathF.Exp(Unsafe.Add(ref p, i) - max);
        else ElementwiseDriver.Map<ExpShiftedOperator>(ref p, ref p, ref p, n, max, isa);
        float sum = Sum(ref p, n, isa);
        ElementwiseDriver.Map<DivideOperator>(ref p, ref p, ref p, n, sum, isa);
    }

    /// <summary>
    /// Σ x[0..n) of non-negative x in TensorPrimitives.Sum's order on <paramref name="isa"/>: one accumulator of the
    /// widest vector that fits (512 bits only on Vector512; below one vector of the path, 256, then 128 bits, as
    /// TensorPrimitives' small-input cases do), the vectors in <see cref="SumOrder"/>'s order, then the width's own
    /// horizontal sum; below four elements a scalar sum from the last element back.
    /// </summary>
    internal static float Sum(ref float x, nint n, Isa isa)
    {
        int c = isa == Isa.Vector512 && n >= 16 ? 16 : n >= 8 ? 8 : n >= 4 ? 4 : 1;
        var order = new SumOrder(n, c);
        switch (c)
        {
            case 16:
                var a512 = Vector512<float>.Zero;
                for (int r = 0; r < SumOrder.Ranges; r++)
                    for (nint at = order.From(r), to = order.To(r); at < to; at += 16) a512 += Vector512.LoadUnsafe(ref x, (nuint)at);
                var mask512 = Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(16 - order.Trailing)).AsSingle();
                return Vector512.Sum(a512 + Vector512.ConditionalSelect(mask512, Vector512.LoadUnsafe(ref x, (nuint)(n - 16)), default));
            case 8:
                var a256 = Vector256<float>.Zero;
                for (int r = 0; r < SumOrder.Ranges; r++)
                    for (nint at = order.From(r), to = order.To(r); at < to; at += 8) a256 += Vector256.LoadUnsafe(ref x, (nuint)at);
                var mask256 = Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(8 - order.Trailing)).AsSingle();
                return Vector256.Sum(a256 + Vector256.ConditionalSelect(mask256, Vector256.LoadUnsafe(ref x, (nuint)(n - 8)), default));
            case 4:
                var a128 = Vector128<float>.Zero;
                for (int r = 0; r < SumOrder.Ranges; r++)
                    for (nint at = order.From(r), to = order.To(r); at < to; at += 4) a128 += Vector128.LoadUnsafe(ref x, (nuint)at);
                var mask128 = Vector128.GreaterThanOrEqual(Vector128<int>.Indices, Vector128.Create(4 - order.Trailing)).AsSingle();
                return Vector128.Sum(a128 + Vector128.ConditionalSelect(mask128, Vector128.LoadUnsafe(ref x, (nuint)(n - 4)), default));
            default:
                float s = 0;
                for (nint i = n - 1; i >= 0; i--) s += Unsafe.Add(ref x, i);
                return s;
        }
    }
}

/// <summary>
/// The order in which TensorPrimitives' aggregation adds the vectors of n ≥ c floats (c lanes each) into its one
/// accumulator, as three ranges of full vectors and a masked last one: above eight vectors, the blocks of eight that
/// start after the first vector; then the first vector; then the remaining full vectors in address order; last the
/// final c floats with only their last <see cref="Trailing"/> lanes kept (none when the full vectors covered all).
/// </summary>
internal readonly struct SumOrder
{
    public const int Ranges = 3;
    private readonly nint _c, _blocksEnd, _stop;

    public SumOrder(nint n, int c)
    {
        _c = c;
        nint start = n > 8 * c ? c : 0;
        _blocksEnd = start == 0 ? 0 : start + (n - c) / (8 * c) * (8 * c);
        nint rest = n - _blocksEnd;
        Trailing = (int)(rest % c);
        _stop = _blocksEnd + rest - Trailing;
    }

    /// <summary>Floats at the end that no full vector covered.</summary>
    public int Trailing { get; }

    /// <summary>Where range <paramref name="r"/> starts.</summary>
    public nint From(int r) => r switch { 0 => _blocksEnd == 0 ? 0 : _c, 1 => 0, _ => _blocksEnd == 0 ? _c : _blocksEnd };

    /// <summary>Where range <paramref name="r"/> ends.</summary>
    public nint To(int r) => r switch { 0 => _blocksEnd, 1 => _c, _ => _stop };
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
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> s) => Vector512.Exp(a - s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> s) => Vector256.Exp(a - s);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Invoke(float a, float b, float s) => MathF.Exp(a - s);
}

/// <summary>a / s.</summary>
internal readonly struct DivideOperator : IMapOperator
{
    public static Vector512<float> Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> s) => a / s;
    public static Vector256<float> Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> s) => a / s;
    public static float Invoke(float a, float b, float s) => a / s;
}
