using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// Q6_K's vector dot products: the unsigned 6-bit q (0..63) × signed activations in pairs (vpmaddubsw, at most
/// 2 · 63 · 128 per pair), times the group's int8 scale widened to int16 (vpmaddwd), or sums of four (vpdpbusd, at most
/// 4 · 63 · 128) packed to int16 and then times the scale where AVX-VNNI exists. The −32 offset is subtracted once per
/// super-block as 32 · Σ_g sc_g · bsum_g, so every sum is the scalar twin's exact integer, and the float step is its.
/// </summary>
internal readonly partial struct Q6KFormat
{
    private static partial float DotV512(ref byte w, ref byte a, int blocks) => KQuant.Dot<V512>(ref w, ref a, blocks);
    private static partial float DotV256(ref byte w, ref byte a, int blocks) => KQuant.Dot<V256<NativeProducts>>(ref w, ref a, blocks);

    /// <summary>
    /// Elements 32k .. 32k + 31 of half <paramref name="h"/> as unsigned q: a nibble of 32 low bytes (k mod 2 picks the
    /// bytes, k &lt; 2 the low nibble) and bits 2k, 2k + 1 of the 32 high bytes, moved to bits 4-5. The 16-bit shifts
    /// cross bytes only in bits the mask 0x30 drops.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<byte> K0, Vector256<byte> K1, Vector256<byte> K2, Vector256<byte> K3) Half256(ref byte block, int h)
    {
        var nibble = Vector256.Create((byte)0x0F);
        var top = Vector256.Create((byte)0x30);
        var la = Vector256.LoadUnsafe(ref block, (nuint)(64 * h));
        var lb = Vector256.LoadUnsafe(ref block, (nuint)(64 * h + 32));
        var qh = Vector256.LoadUnsafe(ref block, (nuint)(128 + 32 * h)).AsUInt16();
        return ((la & nibble) | ((qh << 4).AsByte() & top), (lb & nibble) | ((qh << 2).AsByte() & top),
            ((la.AsUInt16() >> 4).AsByte() & nibble) | (qh.AsByte() & top), ((lb.AsUInt16() >> 4).AsByte() & nibble) | ((qh >> 2).AsByte() & top));
    }

    /// <summary>sumi = Σ sc · q · a − 32 · Σ_g sc_g · bsum_g, then the scalar twin's fma.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(ref float acc, Vector256<int> products, Vector256<short> sc16, ref byte block, ref byte activationBlock)
    {
        var bsums = Vector256.LoadUnsafe(ref activationBlock, QuantizedActivations.Q8KSums).AsInt16();
        int sumi = KQuant.Sum(products - (Avx2.MultiplyAddAdjacent(bsums, sc16) << 5));
        acc = MathF.FusedMultiplyAdd(QuantMath.Half(ref Unsafe.Add(ref block, 208)) * QuantMath.Single(ref activationBlock), sumi, acc);
    }

    /// <summary><see cref="Step"/> of four rows at once (block k at <paramref name="block"/> + k · <paramref name="stride"/>), lane k row k's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> sc0, Vector256<short> sc1,
        Vector256<short> sc2, Vector256<short> sc3, ref byte block, nint stride, ref byte activationBlock)
    {
        var bsums = Vector256.LoadUnsafe(ref activationBlock, QuantizedActivations.Q8KSums).AsInt16();
        var sumi = KQuant.Sum4Rows(sums.S0 - (Avx2.MultiplyAddAdjacent(bsums, sc0) << 5), sums.S1 - (Avx2.MultiplyAddAdjacent(bsums, sc1) << 5),
            sums.S2 - (Avx2.MultiplyAddAdjacent(bsums, sc2) << 5), sums.S3 - (Avx2.MultiplyAddAdjacent(bsums, sc3) << 5));
        var d = KQuant.Halves4(ref block, 208, stride) * Vector128.Create(QuantMath.Single(ref activationBlock));
        return Vector128.FusedMultiplyAdd(d, Vector128.ConvertToSingle(sumi), acc);
    }

    /// <summary>The 16 int8 scales widened to int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales16(ref byte block) => Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref block, 192).AsSByte());

    /// <summary>The 256-bit kernel: each half of 128 elements as four vectors of 32, products formed as <typeparamref name="TM"/> says.</summary>
    internal readonly struct V256<TM> : ISuperBlockKernel where TM : struct, IProductMode
    {
        public static int SuperBlockBytes => BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Sums<TN>(ref byte block, ref byte a, nint aStride, ref TokenSums sums) where TN : struct, ITokens
        {
            var sc8 = Vector128.LoadUnsafe(ref block, 192).AsSByte();
            // With pair sums, vector k of the super-block (groups 2k, 2k + 1) meets [sc_2k x 8, sc_2k+1 x 8]; the
            // packed quads of vectors 2p and 2p + 1 meet [sc_4p x 4, sc_4p+2 x 4 | sc_4p+1 x 4, sc_4p+3 x 4].
            var control = TM.Quads ? Vector128.Create(0x0202_0202_0000_0000ul, 0x0303_0303_0101_0101ul).AsSByte()
                : Vector128.Create(0x0000_0000_0000_0000ul, 0x0101_0101_0101_0101ul).AsSByte();
            for (int h = 0; h < 2; h++)
            {
                var (k0, k1, k2, k3) = Half256(ref block, h);
                ref byte ah = ref Unsafe.Add(ref a, QuantizedActivations.Q8KValues + 128 * h);
                if (TM.Quads)
                {
                    var scA = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control));
                    var scB = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control + Vector128.Create((sbyte)4)));
                    KQuant.Accumulate<TN, Quads>(ref sums, new Quads(k0, k1, k2, k3, scA, scB), ref ah, aStride);
                }
                else
                {
                    var step = Vector128.Create((sbyte)2);
                    var sc0 = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control));
                    var sc1 = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control + step));
                    var sc2 = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control + step + step));
                    var sc3 = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control + step + step + step));
                    KQuant.Accumulate<TN, Pairs>(ref sums, new Pairs(k0, k1, k2, k3, sc0, sc1, sc2, sc3), ref ah, aStride);
                }
                control += Vector128.Create((sbyte)8);
            }
            return Scales16(ref block);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Step(ref float acc, Vector256<int> sums, Vector256<short> scales, ref byte block, ref byte activationBlock) =>
            Q6KFormat.Step(ref acc, sums, scales, ref block, ref activationBlock);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
            Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock) =>
            Q6KFormat.Step4(acc, sums, scales0, scales1, scales2, scales3, ref block, stride, ref activationBlock);

        /// <summary>Σ sc · q · a over one half (128 activations), pairs then scales.</summary>
        private readonly struct Pairs(Vector256<byte> k0, Vector256<byte> k1, Vector256<byte> k2, Vector256<byte> k3,
            Vector256<short> sc0, Vector256<short> sc1, Vector256<short> sc2, Vector256<short> sc3) : ITokenProduct
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Vector256<int> AddTo(Vector256<int> sums, ref byte a)
            {
                var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(k0, Vector256.LoadUnsafe(ref a).AsSByte()), sc0);
                var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(k1, Vector256.LoadUnsafe(ref a, 32).AsSByte()), sc1);
                var p2 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(k2, Vector256.LoadUnsafe(ref a, 64).AsSByte()), sc2);
                var p3 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(k3, Vector256.LoadUnsafe(ref a, 96).AsSByte()), sc3);
                return sums + ((p0 + p1) + (p2 + p3));
            }
        }

        /// <summary>Σ sc · q · a over one half with quads: vectors 0 and 1 packed together, then 2 and 3.</summary>
        private readonly struct Quads(Vector256<byte> k0, Vector256<byte> k1, Vector256<byte> k2, Vector256<byte> k3,
            Vector256<short> scA, Vector256<short> scB) : ITokenProduct
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Vector256<int> AddTo(Vector256<int> sums, ref byte a)
            {
                var q01 = Avx2.PackSignedSaturate(KQuant.Quads(k0, Vector256.LoadUnsafe(ref a).AsSByte()), KQuant.Quads(k1, Vector256.LoadUnsafe(ref a, 32).AsSByte()));
                var q23 = Avx2.PackSignedSaturate(KQuant.Quads(k2, Vector256.LoadUnsafe(ref a, 64).AsSByte()), KQuant.Quads(k3, Vector256.LoadUnsafe(ref a, 96).AsSByte()));
                return KQuant.AddScaled(KQuant.AddScaled(sums, q01, scA), q23, scB);
            }
        }
    }

    /// <summary>The 512-bit kernel: each half of 128 elements as two vectors of 64.</summary>
    internal readonly struct V512 : ISuperBlockKernel
    {
        public static int SuperBlockBytes => BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Sums<TN>(ref byte block, ref byte a, nint aStride, ref TokenSums sums) where TN : struct, ITokens
        {
            var nibble = Vector512.Create((byte)0x0F);
            var top = Vector512.Create((byte)0x30);
            var sc16 = Scales16(ref block);
            var scales = sc16.ToVector512(); // lanes 0-15 are selected, never the zero upper half
            // A vector of 64 elements spans four groups of 16: [sc_g x 8, sc_g+1 x 8, sc_g+2 x 8, sc_g+3 x 8].
            var index = Vector512.Create(Vector256.Create(Vector128<short>.Zero, Vector128<short>.One), Vector256.Create(Vector128.Create((short)2), Vector128.Create((short)3)));
            for (int h = 0; h < 2; h++)
            {
                // Elements 0-63 of the half are the low nibbles of its 64 low bytes with high-byte fields 0 and 1;
                // elements 64-127 the high nibbles with fields 2 and 3.
                var low = Vector512.LoadUnsafe(ref block, (nuint)(64 * h));
                var qh = Vector256.LoadUnsafe(ref block, (nuint)(128 + 32 * h)).AsUInt16();
                var v0 = (low & nibble) | (Vector512.Create((qh << 4).AsByte(), (qh << 2).AsByte()) & top);
                var v1 = ((low.AsUInt16() >> 4).AsByte() & nibble) | (Vector512.Create(qh.AsByte(), (qh >> 2).AsByte()) & top);
                var half = new Half512(v0, v1, KQuant.Permute(scales, index), KQuant.Permute(scales, index + Vector512.Create((short)4)));
                index += Vector512.Create((short)8);
                KQuant.Accumulate<TN, Half512>(ref sums, half, ref Unsafe.Add(ref a, QuantizedActivations.Q8KValues + 128 * h), aStride);
            }
            return sc16;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Step(ref float acc, Vector256<int> sums, Vector256<short> scales, ref byte block, ref byte activationBlock) =>
            Q6KFormat.Step(ref acc, sums, scales, ref block, ref activationBlock);

        public static Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
            Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock) =>
            KQuant.StepEach<V512>(acc, sums, scales0, scales1, scales2, scales3, ref block, stride, ref activationBlock);

        private readonly struct Half512(Vector512<byte> v0, Vector512<byte> v1, Vector512<short> sc0, Vector512<short> sc1) : ITokenProduct
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Vector256<int> AddTo(Vector256<int> sums, ref byte a) =>
                sums + KQuant.Fold(KQuant.Product512(v0, sc0, ref a) + KQuant.Product512(v1, sc1, ref Unsafe.Add(ref a, 64)));
        }
    }
}
