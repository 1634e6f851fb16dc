using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// Pieces the vector paths of the K-quant formats (<see cref="Q4KFormat"/>, <see cref="Q5KFormat"/>,
/// <see cref="Q6KFormat"/>) share: scale unpacking, the exact integer reduction of a super-block, the float steps in
/// the formats' defined order, and the dispatch of 1 to 4 tokens to a specialized kernel.
/// </summary>
internal static class KQuant
{
    private const float TwoTo112 = 5.192296858534828e33f; // 2^112 = 2^(127 - 15): float32's exponent bias over binary16's

    /// <summary>
    /// The binary16 at <paramref name="p"/> as float32, the same value as <see cref="QuantMath.Half"/> for every pattern
    /// (NaNs stay NaNs). It runs once per super-block per row, so a few integer operations and one predictable
    /// branch instead of the general conversion: the exponent and mantissa moved into float32's fields and scaled by
    /// 2^112 rebias a normal and turn a subnormal (a float32 subnormal before the scaling) into the right normal,
    /// both exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ref byte p)
    {
        uint h = Unsafe.ReadUnaligned<ushort>(ref p);
        uint em = (h & 0x7FFF) << 13;
        uint magnitude = em >= 0x7C00u << 13 ? em | 0x7F800000u : BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(em) * TwoTo112);
        return BitConverter.UInt32BitsToSingle(magnitude | ((h & 0x8000) << 16));
    }

    /// <summary>
    /// The 12 packed scale bytes of a Q4_K or Q5_K super-block as 16 bytes: the eight 6-bit scales, then the eight
    /// 6-bit minimums (what <see cref="QuantMath.ScaleMinK4"/> reads one at a time), unpacked with four 32-bit words.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> ScalesMins(ref byte q)
    {
        const uint Low6 = 0x3F3F3F3F, Low4 = 0x0F0F0F0F, Low2 = 0x03030303;
        uint u0 = Unsafe.ReadUnaligned<uint>(ref q), u1 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref q, 4));
        uint u2 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref q, 8));
        // Sub-blocks 0-3 keep the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums); sub-blocks 4-7 take a nibble of
        // bytes 8-11 and the top two bits of bytes 0-3 (scales) or 4-7 (minimums).
        return Vector128.Create(u0 & Low6, (u2 & Low4) | (((u0 >> 6) & Low2) << 4),
            u1 & Low6, ((u2 >> 4) & Low4) | (((u1 >> 6) & Low2) << 4)).AsByte();
    }

    /// <summary>The sum of eight int32 lanes and the sum of four, exactly (integer addition in any order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int A, int B) Sum(Vector256<int> a, Vector128<int> b)
    {
        var h = Ssse3.HorizontalAdd(a.GetLower() + a.GetUpper(), b);
        h = Ssse3.HorizontalAdd(h, h);
        return (h.ToScalar(), h.GetElement(1));
    }

    /// <summary>Q4_K's and Q5_K's minimum term for one token: 4 lanes whose sum is Σ_s m_s · (bsum_2s + bsum_2s+1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Mins(ref byte activationBlock, Vector128<short> mins)
    {
        ref byte s = ref Unsafe.Add(ref activationBlock, QuantizedActivations.Q8KSums);
        var pairs = Ssse3.HorizontalAdd(Vector128.LoadUnsafe(ref s).AsInt16(), Vector128.LoadUnsafe(ref s, 16).AsInt16());
        return Sse2.MultiplyAddAdjacent(pairs, mins);
    }

    /// <summary>
    /// One super-block of Q4_K or Q5_K added to <paramref name="acc"/> in the defined order: fma(d·d_a, sumi), then
    /// fma(−(dmin·d_a), summ). The expressions are the scalar twin's, so the bits are too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref float acc, float d, float dmin, ref byte activationBlock, (int Sumi, int Summ) sums)
    {
        float da = QuantMath.Single(ref activationBlock);
        acc = MathF.FusedMultiplyAdd(d * da, sums.Sumi, acc);
        acc = MathF.FusedMultiplyAdd(-(dmin * da), sums.Summ, acc);
    }

    /// <summary>The 256-bit shuffle control that broadcasts int16 lane 0 of each 128-bit half (step it by 2 per lane).</summary>
    public static Vector256<byte> Broadcast16 => Vector256.Create((ushort)0x0100).AsByte();

    /// <summary>The quantized activation block <paramref name="b"/> of token <paramref name="t"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref byte Token(ref byte a, nint aStride, int t, int b) =>
        ref Unsafe.Add(ref a, aStride * t + (nint)b * QuantizedActivations.Q8KBytes);

    /// <summary>Σ value · activation · scale over 64 elements (pairs, then times the int16 scales) in 16 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Product512(Vector512<byte> values, Vector512<short> scales, ref byte a) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(values, Vector512.LoadUnsafe(ref a).AsSByte()), scales);

    /// <summary>The sum of eight int32 lanes, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Sum(Vector256<int> a)
    {
        var h = a.GetLower() + a.GetUpper();
        h += Sse2.Shuffle(h, 0b_01_00_11_10);
        return (h + Sse2.Shuffle(h, 0b_10_11_00_01)).ToScalar();
    }

    /// <summary>Writes the first <typeparamref name="TN"/>.Count accumulators to dst[0..].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TN>(ref float dst, float acc0, float acc1, float acc2, float acc3) where TN : struct, ITokens
    {
        dst = acc0;
        if (TN.Count > 1) Unsafe.Add(ref dst, 1) = acc1;
        if (TN.Count > 2) Unsafe.Add(ref dst, 2) = acc2;
        if (TN.Count > 3) Unsafe.Add(ref dst, 3) = acc3;
    }

    /// <summary>One row against one token on the 256-bit kernel of <typeparamref name="TK"/>.</summary>
    public static float Dot256<TK>(ref byte w, ref byte a, int blocks) where TK : IKQuantKernel
    {
        float r = 0;
        TK.Tokens256<OneToken>(ref w, ref a, 0, blocks, ref r);
        return r;
    }

    /// <summary>One row against one token on the 512-bit kernel of <typeparamref name="TK"/>.</summary>
    public static float Dot512<TK>(ref byte w, ref byte a, int blocks) where TK : IKQuantKernel
    {
        float r = 0;
        TK.Tokens512<OneToken>(ref w, ref a, 0, blocks, ref r);
        return r;
    }

    /// <summary><see cref="IQuantFormat.DotTokens"/> for a K-quant: its specialized kernels, or the scalar twin per token.</summary>
    public static void DotTokens<TK>(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa)
        where TK : IKQuantKernel, IQuantFormat
    {
        CheckTokens(tokens, destination);
        ref float d = ref MemoryMarshal.GetReference(destination);
        if (isa == Isa.Vector512)
        {
            switch (tokens)
            {
                case 1: TK.Tokens512<OneToken>(ref w, ref a, aStride, blocks, ref d); break;
                case 2: TK.Tokens512<Tokens2>(ref w, ref a, aStride, blocks, ref d); break;
                case 3: TK.Tokens512<Tokens3>(ref w, ref a, aStride, blocks, ref d); break;
                default: TK.Tokens512<Tokens4>(ref w, ref a, aStride, blocks, ref d); break;
            }
        }
        else if (isa == Isa.Vector256)
        {
            switch (tokens)
            {
                case 1: TK.Tokens256<OneToken>(ref w, ref a, aStride, blocks, ref d); break;
                case 2: TK.Tokens256<Tokens2>(ref w, ref a, aStride, blocks, ref d); break;
                case 3: TK.Tokens256<Tokens3>(ref w, ref a, aStride, blocks, ref d); break;
                default: TK.Tokens256<Tokens4>(ref w, ref a, aStride, blocks, ref d); break;
            }
        }
        else QuantMath.DotEachToken<TK>(ref w, ref a, aStride, tokens, blocks, destination, Isa.Scalar);
    }

    /// <summary>Checks the arguments of <see cref="IQuantFormat.DotTokens"/> that a specialized kernel relies on.</summary>
    private static void CheckTokens(int tokens, Span<float> destination)
    {
        if ((uint)(tokens - 1) > 3) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "DotTokens takes 1 to 4 tokens");
        if (destination.Length < tokens) throw new ArgumentException($"destination holds {destination.Length} results, {tokens} needed", nameof(destination));
    }
}
