using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>Element-wise activations on the requested path (Vector512, Vector256 or the scalar twin that states the math).</summary>
public static class Activations
{
    /// <summary>Softmax in place: x[i] = e^(x[i] − max) / Σ e^(x[j] − max). Entries of −∞ get probability 0.</summary>
    public static void Softmax(Span<float> x, Isa? isa = null)
    {
        if (x.IsEmpty)
        {
            KernelPath.Record(isa ?? IsaSupport.Best); // nothing runs, so nothing is checked (as before)
            return;
        }
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        if (path != Isa.Scalar)
        {
            SoftmaxKernel.Run(x, path);
            return;
        }
        KernelPath.Record(Isa.Scalar);
        float max = float.NegativeInfinity;
        foreach (float v in x) max = MathF.Max(max, v);
        float sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        for (int i = 0; i < x.Length; i++) x[i] /= sum;
    }

    /// <summary>
    /// The gated MLP product: y[i] = silu(gate[i]) · up[i], with silu(z) = z / (1 + e^−z). <paramref name="y"/> may
    /// alias an input. Long spans are split over <paramref name="pool"/>, with the same bits.
    /// </summary>
    public static void SiluMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y, Isa? isa = null, WorkerPool? pool = null)
        => ElementwiseDriver.Map<SiluGateOperator>(gate, up, y, 0, isa, pool, nameof(gate), nameof(up));

    /// <summary>Index of the largest entry; the first one on ties (as torch.argmax). NaN entries are never chosen.</summary>
    public static int ArgMax(ReadOnlySpan<float> x, Isa? isa = null)
    {
        if (x.IsEmpty) throw new ArgumentException("argmax of an empty span", nameof(x));
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        ref float p = ref MemoryMarshal.GetReference(x);
        int index = -1;
        if (path != Isa.Scalar)
        {
            // A vector pass finds the maximum (NaN exactly when x holds a NaN, a rare case left to the scalar scan
            // below), then a vector search finds the first index holding it (−0 and +0 compare equal, as in the scan).
            float max = ElementwiseDriver.Reduce<MaxOperator>(ref p, x.Length, KernelPath.Record(path));
            if (!float.IsNaN(max)) index = IndexOf(ref p, x.Length, max, path);
        }
        else KernelPath.Record(Isa.Scalar);
        if (index < 0)
        {
            float best = float.NegativeInfinity;
            for (int i = 0; i < x.Length; i++)
                if (x[i] > best || (index < 0 && x[i] == best)) { best = x[i]; index = i; }
        }
        if (index < 0) throw new ArgumentException("argmax of a span with no finite or infinite value (all NaN)", nameof(x));
        return index;
    }

    /// <summary>The first i with x[i] == value, on the requested width; −1 if none.</summary>
    private static int IndexOf(ref float x, int n, float value, Isa isa)
    {
        int i = 0;
        if (isa == Isa.Vector512)
        {
            var v = Vector512.Create(value);
            for (; i <= n - 16; i += 16)
            {
                ulong m = Vector512.Equals(Vector512.LoadUnsafe(ref x, (nuint)i), v).ExtractMostSignificantBits();
                if (m != 0) return i + BitOperations.TrailingZeroCount(m);
            }
        }
        var w = Vector256.Create(value);
        for (; i <= n - 8; i += 8)
        {
            uint m = Vector256.Equals(Vector256.LoadUnsafe(ref x, (nuint)i), w).ExtractMostSignificantBits();
            if (m != 0) return i + BitOperations.TrailingZeroCount(m);
        }
        for (; i < n; i++)
            if (Unsafe.Add(ref x, i) == value) return i;
        return -1;
    }
}

/// <summary>silu(g) · u = g / (1 + e^−g) · u, with the width's Exp (MathF.Exp in the scalar twin).</summary>
internal readonly struct SiluGateOperator : IMapOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Invoke(Vector512<float> g, Vector512<float> u, Vector512<float> s) => g / (Vector512<float>.One + Vector512.Exp(-g)) * u;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Invoke(Vector256<float> g, Vector256<float> u, Vector256<float> s) => g / (Vector256<float>.One + Vector256.Exp(-g)) * u;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Invoke(float g, float u, float s) => g / (1f + MathF.Exp(-g)) * u;
}
