using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>Small pieces the quantized formats share: reading their scales, and the one order lane sums are added in.</summary>
internal static class QuantMath
{
    /// <summary>The binary16 at <paramref name="p"/> as float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ref byte p) => (float)BitConverter.UInt16BitsToHalf(Unsafe.ReadUnaligned<ushort>(ref p));

    /// <summary>The float32 at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Single(ref byte p) => Unsafe.ReadUnaligned<float>(ref p);

    /// <summary>
    /// The sum of eight lane accumulators in the order every path uses: ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)),
    /// which two horizontal adds of a 256-bit vector and one add of its halves compute.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum8(ReadOnlySpan<float> a) => ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));

    /// <summary>Sub-block <paramref name="j"/>'s 6-bit scale and minimum from the 12 packed bytes of a Q4_K or Q5_K super-block (ggml's get_scale_min_k4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Scale, int Min) ScaleMinK4(int j, ref byte q)
    {
        if (j < 4) return (Unsafe.Add(ref q, j) & 63, Unsafe.Add(ref q, j + 4) & 63);
        return ((Unsafe.Add(ref q, j + 4) & 0xF) | ((Unsafe.Add(ref q, j - 4) >> 6) << 4),
                (Unsafe.Add(ref q, j + 4) >> 4) | ((Unsafe.Add(ref q, j) >> 6) << 4));
    }

    /// <summary><see cref="IQuantFormat.DotTokens"/> as one <see cref="IQuantFormat.Dot"/> per token.</summary>
    public static void DotEachToken<TQ>(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) where TQ : IQuantFormat
    {
        for (int t = 0; t < tokens; t++) destination[t] = TQ.Dot(ref w, ref Unsafe.Add(ref a, aStride * t), blocks, isa);
    }
}
