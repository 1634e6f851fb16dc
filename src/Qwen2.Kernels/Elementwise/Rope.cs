using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Rotary position embedding in the rotate-half layout: dimension j turns together with j + d/2,
/// out[j] = x[j]·cos − x[j+d/2]·sin, out[j+d/2] = x[j+d/2]·cos + x[j]·sin, angle = position · invFreq[j].
/// </summary>
public static class Rope
{
    /// <summary>invFreq[j] = 1 / theta^(2j/d) for j &lt; d/2, computed in float32 as the reference does.</summary>
    public static float[] InverseFrequencies(int headDim, double theta)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "head dimension must be positive and even");
        if (!(theta > 0) || double.IsInfinity(theta)) throw new ArgumentOutOfRangeException(nameof(theta), theta, "rope theta must be positive and finite");
        var inv = new float[headDim / 2];
        for (int j = 0; j < inv.Length; j++)
        {
            float exponent = (float)(2 * j) / headDim;
            inv[j] = 1f / (float)Math.Pow((float)theta, exponent);
        }
        return inv;
    }

    /// <summary>Fills cos and sin (length d/2) for one absolute <paramref name="position"/>; the angle is rounded to float32 first, as in the reference.</summary>
    public static void Angles(int position, ReadOnlySpan<float> inverseFrequencies, Span<float> cos, Span<float> sin)
    {
        for (int j = 0; j < inverseFrequencies.Length; j++)
        {
            float angle = position * inverseFrequencies[j];
            cos[j] = MathF.Cos(angle);
            sin[j] = MathF.Sin(angle);
        }
    }

    /// <summary>Rotates each of the <paramref name="heads"/> heads (length <paramref name="headDim"/>) of one token in place.</summary>
    public static void Apply(Span<float> x, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Isa? isa = null)
    {
        int half = headDim / 2;
        if (headDim % 2 != 0 || cos.Length < half || sin.Length < half) throw new ArgumentException($"cos and sin need {half} entries for head dimension {headDim}");
        if (x.Length < (long)heads * headDim) throw new ArgumentException($"x holds {x.Length} floats, {heads} x {headDim} needed", nameof(x));
        var path = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best));
        ref float pc = ref MemoryMarshal.GetReference(cos);
        ref float ps = ref MemoryMarshal.GetReference(sin);
        for (int h = 0; h < heads; h++)
        {
            ref float x1 = ref MemoryMarshal.GetReference(x.Slice(h * headDim));
            ElementwiseDriver.MapPairs<RotateOperator>(ref x1, ref Unsafe.Add(ref x1, half), ref pc, ref ps, half, path);
        }
    }
}

/// <summary>The rotation of one pair: (a·c − b·s, b·c + a·s).</summary>
internal readonly struct RotateOperator : IPairOperator
{
    public static (Vector512<float> A, Vector512<float> B) Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> s) => (a * c - b * s, b * c + a * s);
    public static (Vector256<float> A, Vector256<float> B) Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> s) => (a * c - b * s, b * c + a * s);
    public static (float A, float B) Invoke(float a, float b, float c, float s) => (a * c - b * s, b * c + a * s);
}
