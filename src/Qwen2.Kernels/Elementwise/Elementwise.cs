using System.Numerics.Tensors;

namespace Qwen2.Kernels;

/// <summary>Element-wise sums of activations (residual connections, biases).</summary>
public static class Elementwise
{
    /// <summary>y[i] = a[i] + b[i]; <paramref name="y"/> may alias an input.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, Isa? isa = null)
    {
        if (b.Length != a.Length || y.Length != a.Length) throw new ArgumentException($"a ({a.Length}), b ({b.Length}) and y ({y.Length}) must have one length");
        IsaSupport.Check(isa ?? IsaSupport.Best);
        TensorPrimitives.Add(a, b, y);
    }

    /// <summary>Adds <paramref name="bias"/> to every row of <paramref name="y"/> (rows of bias.Length each).</summary>
    public static void AddBias(Span<float> y, ReadOnlySpan<float> bias, Isa? isa = null)
    {
        if (bias.IsEmpty || y.Length % bias.Length != 0) throw new ArgumentException($"y ({y.Length}) must hold whole rows of the bias ({bias.Length})", nameof(y));
        for (int r = 0; r < y.Length; r += bias.Length)
        {
            var row = y.Slice(r, bias.Length);
            Add(row, bias, row, isa);
        }
    }
}
