using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// The vector dot products of Q4_K and Q5_K with <see cref="ActivationFormat.Q8K"/> activations, 1 to 4 tokens at a
/// time. Per super-block: unsigned values × signed activations in pairs (vpmaddubsw), times the sub-block scale as int16
/// (vpmaddwd), or sums of four (vpdpbusd) packed to int16 and then times the scale where AVX-VNNI exists; the minimum
/// term from the activations' group sums. Every sum is an exact integer (no int16 step can overflow: a pair is at most
/// 2 · 31 · 128, a VNNI quad 4 · 31 · 128), and the two float steps per super-block are <see cref="KQuant.Step"/>,
/// the scalar twin's.
/// </summary>
internal static class ScaleMinKernels
{
    /// <summary>The 256-bit kernel for <typeparamref name="TW"/>.</summary>
    public static void Tokens256<TW, TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst)
        where TW : IScaleMinWeights where TN : struct, ITokens
    {
        float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref byte wb = ref Unsafe.Add(ref w, (nint)b * TW.SuperBlockBytes);
            var sm = Avx2.ConvertToVector256Int16(KQuant.ScalesMins(ref Unsafe.Add(ref wb, 4)));
            var scales = Avx2.Permute2x128(sm, sm, 0).AsByte(); // the eight scales in both halves, for in-lane shuffles
            var mins = sm.GetUpper();
            // Without VNNI each sub-block's products meet one broadcast scale; with it, the packed quads of sub-blocks 2c
            // and 2c + 1 meet four copies of each (see Pair256).
            var control = AvxVnni.IsSupported ? Vector256.Create(0x0100_0100_0100_0100ul, 0x0302_0302_0302_0302ul, 0x0100_0100_0100_0100ul, 0x0302_0302_0302_0302ul).AsByte() : KQuant.Broadcast16;
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < 4; c++)
            {
                var (lo, hi) = TW.Chunk256(ref wb, c);
                var scA = Avx2.Shuffle(scales, control).AsInt16();
                var scB = AvxVnni.IsSupported ? scA : Avx2.Shuffle(scales, control + Vector256.Create((byte)2)).AsInt16();
                control += Vector256.Create((byte)4);
                nint at = QuantizedActivations.Q8KValues + 64 * c;
                s0 += Pair256(lo, hi, scA, scB, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 0, b), at));
                if (TN.Count > 1) s1 += Pair256(lo, hi, scA, scB, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 1, b), at));
                if (TN.Count > 2) s2 += Pair256(lo, hi, scA, scB, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 2, b), at));
                if (TN.Count > 3) s3 += Pair256(lo, hi, scA, scB, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 3, b), at));
            }
            float d = KQuant.Half(ref wb), dmin = KQuant.Half(ref Unsafe.Add(ref wb, 2));
            Finish(ref acc0, s0, d, dmin, mins, ref KQuant.Token(ref a, aStride, 0, b));
            if (TN.Count > 1) Finish(ref acc1, s1, d, dmin, mins, ref KQuant.Token(ref a, aStride, 1, b));
            if (TN.Count > 2) Finish(ref acc2, s2, d, dmin, mins, ref KQuant.Token(ref a, aStride, 2, b));
            if (TN.Count > 3) Finish(ref acc3, s3, d, dmin, mins, ref KQuant.Token(ref a, aStride, 3, b));
        }
        KQuant.Store<TN>(ref dst, acc0, acc1, acc2, acc3);
    }

    /// <summary>The 512-bit kernel for <typeparamref name="TW"/>: one chunk of 64 values per vector.</summary>
    public static void Tokens512<TW, TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst)
        where TW : IScaleMinWeights where TN : struct, ITokens
    {
        float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref byte wb = ref Unsafe.Add(ref w, (nint)b * TW.SuperBlockBytes);
            var sm = Avx2.ConvertToVector256Int16(KQuant.ScalesMins(ref Unsafe.Add(ref wb, 4)));
            var scales = sm.ToVector512Unsafe(); // only int16 lanes 0-7 (the scales) are ever selected
            var mins = sm.GetUpper();
            var index = Vector512.Create(Vector256<short>.Zero, Vector256<short>.One); // sub-block 2c's scale, then 2c + 1's
            Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < 4; c++)
            {
                var v = TW.Chunk512(ref wb, c);
                var sc = Avx512BW.PermuteVar32x16(scales, index);
                index += Vector512.Create((short)2);
                nint at = QuantizedActivations.Q8KValues + 64 * c;
                s0 += KQuant.Product512(v, sc, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 0, b), at));
                if (TN.Count > 1) s1 += KQuant.Product512(v, sc, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 1, b), at));
                if (TN.Count > 2) s2 += KQuant.Product512(v, sc, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 2, b), at));
                if (TN.Count > 3) s3 += KQuant.Product512(v, sc, ref Unsafe.Add(ref KQuant.Token(ref a, aStride, 3, b), at));
            }
            float d = KQuant.Half(ref wb), dmin = KQuant.Half(ref Unsafe.Add(ref wb, 2));
            Finish(ref acc0, s0.GetLower() + s0.GetUpper(), d, dmin, mins, ref KQuant.Token(ref a, aStride, 0, b));
            if (TN.Count > 1) Finish(ref acc1, s1.GetLower() + s1.GetUpper(), d, dmin, mins, ref KQuant.Token(ref a, aStride, 1, b));
            if (TN.Count > 2) Finish(ref acc2, s2.GetLower() + s2.GetUpper(), d, dmin, mins, ref KQuant.Token(ref a, aStride, 2, b));
            if (TN.Count > 3) Finish(ref acc3, s3.GetLower() + s3.GetUpper(), d, dmin, mins, ref KQuant.Token(ref a, aStride, 3, b));
        }
        KQuant.Store<TN>(ref dst, acc0, acc1, acc2, acc3);
    }

    /// <summary>
    /// Σ scale · value · activation over sub-blocks 2c (<paramref name="lo"/>, activations a[0..31]) and 2c + 1
    /// (<paramref name="hi"/>, a[32..63]) in 8 int32 lanes. With VNNI, <paramref name="scA"/> holds sub-block 2c's scale
    /// in int16 lanes 0-3 of each half and 2c + 1's in lanes 4-7, the layout packing the two quad sums gives.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pair256(Vector256<byte> lo, Vector256<byte> hi, Vector256<short> scA, Vector256<short> scB, ref byte a)
    {
        var a0 = Vector256.LoadUnsafe(ref a).AsSByte();
        var a1 = Vector256.LoadUnsafe(ref a, 32).AsSByte();
        if (AvxVnni.IsSupported)
        {
            var quads = Avx2.PackSignedSaturate(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, lo, a0), AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, hi, a1));
            return Avx2.MultiplyAddAdjacent(quads, scA);
        }
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, a0), scA) + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, a1), scB);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(ref float acc, Vector256<int> sumi, float d, float dmin, Vector128<short> mins, ref byte activationBlock) =>
        KQuant.Step(ref acc, d, dmin, ref activationBlock, KQuant.Sum(sumi, KQuant.Mins(ref activationBlock, mins)));
}
