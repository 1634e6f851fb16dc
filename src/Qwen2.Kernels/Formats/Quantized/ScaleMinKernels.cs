using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// The vector kernels of Q4_K and Q5_K with <see cref="ActivationFormat.Q8K"/> activations. Per super-block: unsigned
/// values × signed activations in pairs (vpmaddubsw), times the sub-block scale as int16 (vpmaddwd); or, where AVX-VNNI
/// exists, sums of four (vpdpbusd) packed to int16 and then times the scale into the sums (vpdpwssd); the minimum
/// term from the activations' group sums. Every sum is an exact integer (no int16 step can overflow: a pair is at most
/// 2 · 31 · 128, a quad 4 · 31 · 128), and the two float steps per super-block are <see cref="KQuant.Step"/>, the
/// scalar twin's.
/// </summary>
internal static class ScaleMinKernels
{
    /// <summary>The minimum term, then fma(d·d_a, sumi) and fma(−(dmin·d_a), summ).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(ref float acc, Vector256<int> sumi, Vector256<short> scalesMins, ref byte block, ref byte activationBlock) =>
        KQuant.Step(ref acc, QuantMath.Half(ref block), QuantMath.Half(ref Unsafe.Add(ref block, 2)), ref activationBlock,
            KQuant.Sum(sumi, KQuant.Mins(ref activationBlock, scalesMins.GetUpper())));

    /// <summary>
    /// <see cref="Step"/> of four rows at once, lane k row k's: the four rows' sumi and summ reduced by horizontal adds
    /// (the minimums of rows 0 and 2, then 1 and 3, side by side against the activations' pair sums in both halves),
    /// then both fmas on all four lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
        Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock)
    {
        var sumi = KQuant.Sum4Rows(sums.S0, sums.S1, sums.S2, sums.S3);
        var both = KQuant.PairsTwice(ref activationBlock);
        var m = Avx2.HorizontalAdd(Avx2.MultiplyAddAdjacent(both, Avx2.Permute2x128(scales0, scales2, 0x31)),
            Avx2.MultiplyAddAdjacent(both, Avx2.Permute2x128(scales1, scales3, 0x31))); // [row 0: 2, row 1: 2 | row 2: 2, row 3: 2]
        var summ = Ssse3.HorizontalAdd(m.GetLower(), m.GetUpper());
        var da = Vector128.Create(QuantMath.Single(ref activationBlock));
        acc = Vector128.FusedMultiplyAdd(KQuant.Halves4(ref block, 0, stride) * da, Vector128.ConvertToSingle(sumi), acc);
        return Vector128.FusedMultiplyAdd(-(KQuant.Halves4(ref block, 2, stride) * da), Vector128.ConvertToSingle(summ), acc);
    }

    /// <summary>The eight scales then the eight minimums as int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ScalesMins(ref byte block) => Avx2.ConvertToVector256Int16(KQuant.ScalesMins(ref block));

    /// <summary>The 256-bit kernel: a chunk of 64 values as two vectors of 32, products formed as <typeparamref name="TM"/> says.</summary>
    internal readonly struct V256<TW, TM> : ISuperBlockKernel where TW : IScaleMinWeights where TM : struct, IProductMode
    {
        public static int SuperBlockBytes => TW.SuperBlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Sums<TN>(ref byte block, ref byte a, nint aStride, ref TokenSums sums) where TN : struct, ITokens
        {
            var sm = ScalesMins(ref block);
            var scales = Avx2.Permute2x128(sm, sm, 0).AsByte(); // the eight scales in both halves, for in-lane shuffles
            // Pair sums of a sub-block meet one broadcast scale; the packed quads of sub-blocks 2c
            // and 2c + 1 meet four copies of each in each half (see Pair).
            var control = TM.Quads
                ? Vector256.Create(0x0100_0100_0100_0100ul, 0x0302_0302_0302_0302ul, 0x0100_0100_0100_0100ul, 0x0302_0302_0302_0302ul).AsByte()
                : KQuant.Broadcast16;
            for (int c = 0; c < 4; c++)
            {
                var (lo, hi) = TW.Chunk256(ref block, c);
                var scA = Avx2.Shuffle(scales, control).AsInt16();
                var scB = TM.Quads ? scA : Avx2.Shuffle(scales, control + Vector256.Create((byte)2)).AsInt16();
                control += Vector256.Create((byte)4);
                KQuant.Accumulate<TN, Pair>(ref sums, new Pair(lo, hi, scA, scB), ref Unsafe.Add(ref a, QuantizedActivations.Q8KValues + 64 * c), aStride);
            }
            return sm;
        }

        public static bool FourRows => true;

        // Chunk by chunk across the four rows: each chunk's activations are loaded once for the rows, and the loop's
        // counter and shuffle controls are shared by them.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sums4Rows(ref byte block, nint stride, ref byte a, ref TokenSums sums,
            out Vector256<short> scales0, out Vector256<short> scales1, out Vector256<short> scales2, out Vector256<short> scales3)
        {
            ref byte w1 = ref Unsafe.Add(ref block, stride);
            ref byte w2 = ref Unsafe.Add(ref w1, stride);
            ref byte w3 = ref Unsafe.Add(ref w2, stride);
            scales0 = ScalesMins(ref block);
            scales1 = ScalesMins(ref w1);
            scales2 = ScalesMins(ref w2);
            scales3 = ScalesMins(ref w3);
            var b0 = Avx2.Permute2x128(scales0, scales0, 0).AsByte();
            var b1 = Avx2.Permute2x128(scales1, scales1, 0).AsByte();
            var b2 = Avx2.Permute2x128(scales2, scales2, 0).AsByte();
            var b3 = Avx2.Permute2x128(scales3, scales3, 0).AsByte();
            var control = TM.Quads
                ? Vector256.Create(0x0100_0100_0100_0100ul, 0x0302_0302_0302_0302ul, 0x0100_0100_0100_0100ul, 0x0302_0302_0302_0302ul).AsByte()
                : KQuant.Broadcast16;
            for (int c = 0; c < 4; c++)
            {
                ref byte ac = ref Unsafe.Add(ref a, QuantizedActivations.Q8KValues + 64 * c);
                var a0 = Vector256.LoadUnsafe(ref ac).AsSByte();
                var a1 = Vector256.LoadUnsafe(ref ac, 32).AsSByte();
                sums.S0 = Row(sums.S0, ref block, c, b0, control, a0, a1);
                sums.S1 = Row(sums.S1, ref w1, c, b1, control, a0, a1);
                sums.S2 = Row(sums.S2, ref w2, c, b2, control, a0, a1);
                sums.S3 = Row(sums.S3, ref w3, c, b3, control, a0, a1);
                control += Vector256.Create((byte)4);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            static Vector256<int> Row(Vector256<int> sums, ref byte w, int c, Vector256<byte> scales, Vector256<byte> control, Vector256<sbyte> a0, Vector256<sbyte> a1)
            {
                var (lo, hi) = TW.Chunk256(ref w, c);
                var scA = Avx2.Shuffle(scales, control).AsInt16();
                if (TM.Quads) return KQuant.AddScaled(sums, Avx2.PackSignedSaturate(KQuant.Quads(lo, a0), KQuant.Quads(hi, a1)), scA);
                var scB = Avx2.Shuffle(scales, control + Vector256.Create((byte)2)).AsInt16();
                return sums + (Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, a0), scA) + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, a1), scB));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Step(ref float acc, Vector256<int> sums, Vector256<short> scales, ref byte block, ref byte activationBlock) =>
            ScaleMinKernels.Step(ref acc, sums, scales, ref block, ref activationBlock);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
            Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock) =>
            ScaleMinKernels.Step4(acc, sums, scales0, scales1, scales2, scales3, ref block, stride, ref activationBlock);

        /// <summary>
        /// Sub-blocks 2c (<c>lo</c>, activations a[0..31]) and 2c + 1 (<c>hi</c>, a[32..63]). With quads, <c>scA</c> holds
        /// 2c's scale in int16 lanes 0-3 of each half and 2c + 1's in lanes 4-7, the layout packing two quad sums gives.
        /// </summary>
        private readonly struct Pair(Vector256<byte> lo, Vector256<byte> hi, Vector256<short> scA, Vector256<short> scB) : ITokenProduct
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Vector256<int> AddTo(Vector256<int> sums, ref byte a)
            {
                var a0 = Vector256.LoadUnsafe(ref a).AsSByte();
                var a1 = Vector256.LoadUnsafe(ref a, 32).AsSByte();
                if (TM.Quads) return KQuant.AddScaled(sums, Avx2.PackSignedSaturate(KQuant.Quads(lo, a0), KQuant.Quads(hi, a1)), scA);
                return sums + (Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, a0), scA) + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, a1), scB));
            }
        }
    }

    /// <summary>The 512-bit kernel: a chunk of 64 values in one vector.</summary>
    internal readonly struct V512<TW> : ISuperBlockKernel where TW : IScaleMinWeights
    {
        public static int SuperBlockBytes => TW.SuperBlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Sums<TN>(ref byte block, ref byte a, nint aStride, ref TokenSums sums) where TN : struct, ITokens
        {
            var sm = ScalesMins(ref block);
            var scales = sm.ToVector512(); // only int16 lanes 0-7 (the scales) are ever selected
            var index = Vector512.Create(Vector256<short>.Zero, Vector256<short>.One); // sub-block 2c's scale, then 2c + 1's
            for (int c = 0; c < 4; c++)
            {
                var chunk = new Chunk(TW.Chunk512(ref block, c), KQuant.Permute(scales, index));
                index += Vector512.Create((short)2);
                KQuant.Accumulate<TN, Chunk>(ref sums, chunk, ref Unsafe.Add(ref a, QuantizedActivations.Q8KValues + 64 * c), aStride);
            }
            return sm;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Step(ref float acc, Vector256<int> sums, Vector256<short> scales, ref byte block, ref byte activationBlock) =>
            ScaleMinKernels.Step(ref acc, sums, scales, ref block, ref activationBlock);

        public static Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
            Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock) =>
            KQuant.StepEach<V512<TW>>(acc, sums, scales0, scales1, scales2, scales3, ref block, stride, ref activationBlock);

        private readonly struct Chunk(Vector512<byte> values, Vector512<short> scales) : ITokenProduct
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Vector256<int> AddTo(Vector256<int> sums, ref byte a) => sums + KQuant.Fold(KQuant.Product512(values, scales, ref a));
        }
    }

    /// <summary>
    /// The tile's pieces (<see cref="KTile"/>): sub-block s is vector s with its scale in all 16 lanes (the row's scales
    /// and minimums go on to the step); the float steps
    /// per lane are <see cref="KQuant.Step"/>'s: fma(d·d_a, sumi), then fma(−(dmin·d_a), summ), summ from the minimums.
    /// </summary>
    internal readonly unsafe struct Tile<TW> : IKTileKernel where TW : IScaleMinWeights
    {
        public static int SuperBlockBytes => TW.SuperBlockBytes;

        public static bool HasOffset => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Scales(ref byte block, Vector256<short>* scales)
        {
            var sm = ScalesMins(ref block);
            var both = Avx2.Permute2x128(sm, sm, 0).AsByte(); // the eight scales in both halves, for in-lane shuffles
            var control = KQuant.Broadcast16;
            for (int s = 0; s < 8; s++)
            {
                scales[s] = Avx2.Shuffle(both, control).AsInt16();
                control += Vector256.Create((byte)2);
            }
            return sm;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Unpack(ref byte block, Vector256<byte>* values)
        {
            if (TW.UnpackTogether) UnpackChunks(ref block, values);
        }

        // Compiled apart, so the JIT does not hoist its mask constants into registers the tile's loop needs.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void UnpackChunks(ref byte block, Vector256<byte>* values)
        {
            for (int c = 0; c < 4; c++)
            {
                var (lo, hi) = TW.Chunk256(ref block, c);
                values[2 * c] = lo;
                values[2 * c + 1] = hi;
            }
        }

        // Otherwise with k a constant the JIT keeps only the half of the chunk that is used.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(ref byte block, Vector256<byte>* values, int k)
        {
            if (TW.UnpackTogether) return Avx.LoadVector256((byte*)(values + k));
            var (lo, hi) = TW.Chunk256(ref block, k >> 1);
            return (k & 1) == 0 ? lo : hi;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (float D, float DMin) RowScales(ref byte block) => (QuantMath.Half(ref block), QuantMath.Half(ref Unsafe.Add(ref block, 2)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Step(Vector256<float> acc, Vector256<int> sumi, Vector256<short> r0, Vector256<short> r1,
            Vector256<float> d, Vector256<float> dmin, ref byte a, nint aStride)
        {
            var mins = Vector256.Create(r0.GetUpper(), r1.GetUpper());
            var summ = KTile.Reduce(Mins(ref a, mins), Mins(ref Unsafe.Add(ref a, aStride), mins),
                Mins(ref Unsafe.Add(ref a, 2 * aStride), mins), Mins(ref Unsafe.Add(ref a, 3 * aStride), mins));
            var da = KTile.PerToken(ref a, aStride);
            acc = Vector256.FusedMultiplyAdd(d * da, Vector256.ConvertToSingle(sumi), acc);
            return Vector256.FusedMultiplyAdd(-(dmin * da), Vector256.ConvertToSingle(summ), acc);
        }

        /// <summary>One token's minimum terms with both rows: its pair sums in both halves times [row 0's minimums, row 1's].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<int> Mins(ref byte activationBlock, Vector256<short> mins)
            => Avx2.MultiplyAddAdjacent(KQuant.PairsTwice(ref activationBlock), mins);
    }
}
