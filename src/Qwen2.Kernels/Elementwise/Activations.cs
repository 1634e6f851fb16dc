using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>Element-wise activations. The vector paths use TensorPrimitives (which picks AVX-512 or AVX2 itself); the scalar twins state the math.</summary>
public static class Activations
{
    /// <summary>The gated MLP product: y[i] = silu(gate[i]) · up[i], with silu(z) = z / (1 + e^−z). <paramref name="y"/> may alias an input.</summary>
    public static void SiluMul(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y, Isa? isa = null)
    {
        if (up.Length != gate.Length || y.Length != gate.Length) throw new ArgumentException($"gate ({gate.Length}), up ({up.Length}) and y ({y.Length}) must have one length");
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        // One pass, element by element, so y may alias gate or up.
        ref float g = ref MemoryMarshal.GetReference(gate);
        ref float u = ref MemoryMarshal.GetReference(up);
        ref float o = ref MemoryMarshal.GetReference(y);
        int n = gate.Length;
        nint i = 0;
        if (path == Isa.Vector512)
        {
            for (; i <= n - 16; i += 16)
            {
                var gv = Vector512.LoadUnsafe(ref g, (nuint)i);
                (gv / (Vector512<float>.One + Vector512.Exp(-gv)) * Vector512.LoadUnsafe(ref u, (nuint)i)).StoreUnsafe(ref o, (nuint)i);
            }
        }
        for (; path != Isa.Scalar && i <= n - 8; i += 8)
        {
            var gv = Vector256.LoadUnsafe(ref g, (nuint)i);
            (gv / (Vector256<float>.One + Vector256.Exp(-gv)) * Vector256.LoadUnsafe(ref u, (nuint)i)).StoreUnsafe(ref o, (nuint)i);
        }
        for (; i < n; i++)
        {
            float gi = Unsafe.Add(ref g, i);
            Unsafe.Add(ref o, i) = gi / (1f + MathF.Exp(-gi)) * Unsafe.Add(ref u, i);
        }
    }

    /// <summary>Softmax in place: x[i] = e^(x[i] − max) / Σ e^(x[j] − max). Entries of −∞ get probability 0.</summary>
    public static void Softmax(Span<float> x, Isa? isa = null)
    {
        if (x.IsEmpty) return;
        if (IsaSupport.Check(isa ?? IsaSupport.Best) == Isa.Scalar)
        {
            float max = float.NegativeInfinity;
            foreach (float v in x) max = MathF.Max(max, v);
            float sum = 0;
            for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
            for (int i = 0; i < x.Length; i++) x[i] /= sum;
            return;
        }
        float m = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, m, x);
        TensorPrimitives.Exp(x, x);
        TensorPrimitives.Divide(x, TensorPrimitives.Sum(x), x);
    }

    /// <summary>Index of the largest entry; the first one on ties (as torch.argmax). NaN entries are never chosen.</summary>
    public static int ArgMax(ReadOnlySpan<float> x, Isa? isa = null)
    {
        if (x.IsEmpty) throw new ArgumentException("argmax of an empty span", nameof(x));
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        int index = -1;
        if (path != Isa.Scalar)
        {
            // Vector pass finds the maximum; the first index holding it is then found with a vectorized search.
            // TensorPrimitives.MaxNumber would be the natural call, but its span reduction returns NaN as soon as it
            // meets one (dotnet/runtime#133346), so take the plain maximum, which is NaN exactly when x holds a NaN,
            // and leave that rare case to the scalar scan below.
            float max = TensorPrimitives.Max(x);
            if (!float.IsNaN(max)) index = x.IndexOf(max);
        }
        if (index < 0)
        {
            float best = float.NegativeInfinity;
            for (int i = 0; i < x.Length; i++)
                if (x[i] > best || (index < 0 && x[i] == best)) { best = x[i]; index = i; }
        }
        if (index < 0) throw new ArgumentException("argmax of a span with no finite or infinite value (all NaN)", nameof(x));
        return index;
    }
}
