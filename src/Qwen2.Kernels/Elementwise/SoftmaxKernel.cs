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
        nint at;
        int lanes;
        switch (c)
        {
            case 16:
                var a512 = Vector512<float>.Zero;
                while (order.Next(out at, out lanes))
                    a512 += Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(16 - lanes)).AsSingle(), Vector512.LoadUnsafe(ref x, (nuint)at), default);
                return Vector512.Sum(a512);
            case 8:
                var a256 = Vector256<float>.Zero;
                while (order.Next(out at, out lanes))
                    a256 += Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(8 - lanes)).AsSingle(), Vector256.LoadUnsafe(ref x, (nuint)at), default);
                return Vector256.Sum(a256);
            case 4:
                var a128 = Vector128<float>.Zero;
                while (order.Next(out at, out lanes))
                    a128 += Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(Vector128<int>.Indices, Vector128.Create(4 - lanes)).AsSingle(), Vector128.LoadUnsafe(ref x, (nuint)at), default);
                return Vector128.Sum(a128);
            default:
                float s = 0;
                for (nint i = n - 1; i >= 0; i--) s += Unsafe.Add(ref x, i);
                return s;
        }
    }
}

/// <summary>
/// The order in which TensorPrimitives' aggregation adds the vectors of n ≥ c floats (c lanes each) into its one
/// accumulator: above eight vectors, blocks of eight starting after the first vector; then the first vector; then the
/// remaining full vectors in address order; last the final c floats with only their last (n − covered) lanes kept.
/// Below eight vectors the first vector is followed directly by the others. Each step yields an offset and how many of
/// its last lanes count (c for a full vector).
/// </summary>
internal struct SumOrder
{
    private readonly nint _n, _c, _blocksEnd, _stop;
    private readonly int _trailing;
    private nint _next;
    private int _phase;

    public SumOrder(nint n, int c)
    {
        _n = n; _c = c;
        bool skipFirst = n > 8 * c;
        nint start = skipFirst ? c : 0, blocked = skipFirst ? (n - c) / (8 * c) * (8 * c) : 0;
        _blocksEnd = start + blocked;
        nint rest = n - _blocksEnd;
        _trailing = (int)(rest % c);
        _stop = _blocksEnd + rest - _trailing;
        // The full vectors after the first: from the end of the eight-vector blocks, or from c when there were none.
        _next = skipFirst ? c : 0;
        _phase = skipFirst ? 0 : 1;
    }

    public bool Next(out nint at, out int lanes)
    {
        lanes = (int)_c;
        switch (_phase)
        {
            case 0: // eight-vector blocks
                at = _next; _next += _c;
                if (_next >= _blocksEnd) { _phase = 1; }
                if (at < _blocksEnd) return true;
                goto case 1;
            case 1: // the first vector
                at = 0; _phase = 2;
                _next = _blocksEnd == 0 ? _c : _blocksEnd;
                return true;
            case 2: // the remaining full vectors
                if (_next < _stop) { at = _next; _next += _c; return true; }
                _phase = 3;
                goto case 3;
            case 3: // the last vector, masked to the floats no full vector covered
                at = _n - _c; lanes = _trailing; _phase = 4;
                return true;
            default:
                at = 0;
                return false;
        }
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
