using System.Runtime.CompilerServices;
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
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float inv = 1f / MathF.Sqrt(SumOfSquares(xr, path) / d + eps);
            Scale(xr, inv, weight, yr, path);
        }
    }

    internal static float SumOfSquares(ReadOnlySpan<float> x, Isa isa)
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length;
        nint i = 0;
        float s;
        if (isa == Isa.Vector512)
        {
            var a = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16) { var v = Vector512.LoadUnsafe(ref p, (nuint)i); a = Vector512.FusedMultiplyAdd(v, v, a); }
            s = Vector512.Sum(a);
        }
        else if (isa == Isa.Vector256)
        {
            var a = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) { var v = Vector256.LoadUnsafe(ref p, (nuint)i); a = Vector256.FusedMultiplyAdd(v, v, a); }
            s = Vector256.Sum(a);
        }
        else s = 0;
        for (; i < n; i++) { float v = Unsafe.Add(ref p, i); s += v * v; }
        return s;
    }

    private static void Scale(ReadOnlySpan<float> x, float inv, ReadOnlySpan<float> w, Span<float> y, Isa isa)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float py = ref MemoryMarshal.GetReference(y);
        int n = x.Length;
        nint i = 0;
        if (isa == Isa.Vector512)
        {
            var s = Vector512.Create(inv);
            for (; i <= n - 16; i += 16)
                (Vector512.LoadUnsafe(ref px, (nuint)i) * s * Vector512.LoadUnsafe(ref pw, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
        }
        else if (isa == Isa.Vector256)
        {
            var s = Vector256.Create(inv);
            for (; i <= n - 8; i += 8)
                (Vector256.LoadUnsafe(ref px, (nuint)i) * s * Vector256.LoadUnsafe(ref pw, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref py, i) = Unsafe.Add(ref px, i) * inv * Unsafe.Add(ref pw, i);
    }
}
