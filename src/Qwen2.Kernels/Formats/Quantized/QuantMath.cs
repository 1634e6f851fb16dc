using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>Small pieces the quantized formats share: reading their scales, and the one order lane sums are added in.</summary>
internal static class QuantMath
{
    private const float TwoTo112 = 5.192296858534828e33f; // 2^112, exactly: the gap between the float32 and binary16 exponent biases

    /// <summary>The binary16 at <paramref name="p"/> as float32 (exact; NaNs stay NaNs, payload kept), read from a table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ref byte p) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Halves), Unsafe.ReadUnaligned<ushort>(ref p));

    // Every binary16 as float32 (256 KiB): one load per block scale instead of a dozen integer and float steps, which the
    // compute-bound integer dot products feel, and no float multiply on a subnormal operand, which costs a microcode
    // assist and which real files meet on every block (Q6_K super-block scales of small weights are binary16
    // subnormals); the blocks of one matrix share few distinct scales, so the table stays in cache.
    private static readonly float[] Halves = HalfTable();

    private static float[] HalfTable()
    {
        var t = new float[65536];
        Span<byte> bits = stackalloc byte[2];
        for (int i = 0; i < t.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bits, (ushort)i);
            t[i] = HalfArithmetic(ref bits[0]);
        }
        return t;
    }

    /// <summary>
    /// The conversion the table holds, computed: the exponent and mantissa shifted into float32's fields are the value
    /// times 2^−112, subnormals included, and one exact multiply by 2^112 rebiases them; infinities and NaNs are rebiased
    /// in the integer fields instead.
    /// </summary>
    private static float HalfArithmetic(ref byte p)
    {
        uint h = Unsafe.ReadUnaligned<ushort>(ref p), em = h & 0x7FFF;
        uint finite = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(em << 13) * TwoTo112);
        uint bits = em >= 0x7C00 ? (em << 13) + 0x70000000 : finite;
        return BitConverter.UInt32BitsToSingle(bits | ((h & 0x8000) << 16));
    }

    /// <summary>The float32 at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Single(ref byte p) => Unsafe.ReadUnaligned<float>(ref p);

    /// <summary>
    /// The sum of eight lane accumulators in the order every path uses: ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)),
    /// which two horizontal adds of a 256-bit vector and one add of its halves compute.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum8(ReadOnlySpan<float> a) => ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));

    /// <summary>The sum of four lane accumulators in the order every path uses: (a0 + a1) + (a2 + a3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum4(ReadOnlySpan<float> a) => (a[0] + a[1]) + (a[2] + a[3]);

    /// <summary><see cref="Sum4(ReadOnlySpan{float})"/> of a vector's four lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum4(Vector128<float> a) => (a.GetElement(0) + a.GetElement(1)) + (a.GetElement(2) + a.GetElement(3));

    /// <summary><see cref="Sum8(ReadOnlySpan{float})"/> of a vector's eight lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum8(Vector256<float> a)
    {
        // Reading lanes one by one would keep the accumulator in memory for the whole loop that feeds it.
        if (Avx.IsSupported)
        {
            var h = Avx.HorizontalAdd(a, a);
            h = Avx.HorizontalAdd(h, h);
            return h.GetLower().ToScalar() + h.GetUpper().ToScalar();
        }
        return ((a.GetElement(0) + a.GetElement(1)) + (a.GetElement(2) + a.GetElement(3))) + ((a.GetElement(4) + a.GetElement(5)) + (a.GetElement(6) + a.GetElement(7)));
    }

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
