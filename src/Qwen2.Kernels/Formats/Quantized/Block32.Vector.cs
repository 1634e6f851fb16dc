using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The vector paths. A block's eight lane sums p_j are one vpmaddubsw (unsigned weight bytes times signed activation
/// bytes, adjacent pairs added into int16) and one vpmaddwd by ones (adjacent int16 pairs into int32), or one vpdpbusd
/// where AVX-VNNI is present; signed weights go in as |w| with the activation's sign flipped where w is negative (ggml's
/// trick), since w · a = |w| · (sign(w) · a). No int16 pair saturates: |w| ≤ 128 and |a| ≤ 127 give at most 32512.
/// The float steps are the scalar twin's, block after block (a signed format's lane sums folded to four lanes first),
/// so the bits are the same. One weight block is unpacked once for up to four tokens (<see cref="IQuantFormat.DotTokens"/>);
/// each token keeps its own accumulators.
/// </remarks>
internal static partial class Block32
{
    private static float DotV512<T>(ref byte w, ref byte a, int blocks) where T : IBlock32
    {
        float r = 0;
        RowV512<T, OneToken>(ref w, ref a, 0, blocks, ref r);
        return r;
    }

    private static float DotV256<T>(ref byte w, ref byte a, int blocks) where T : IBlock32
    {
        float r = 0;
        RowV256<T, OneToken>(ref w, ref a, 0, blocks, ref r);
        return r;
    }

    /// <summary>
    /// The 256-bit dot with the integer products chosen: vpdpbusd (<paramref name="vnni"/>, where AVX-VNNI is present)
    /// or vpmaddubsw + vpmaddwd, so tests hold both to the scalar twin on a CPU that has both.
    /// </summary>
    internal static float DotV256<T>(ref byte w, ref byte a, int blocks, bool vnni) where T : IBlock32
    {
        if (vnni && !AvxVnni.IsSupported) throw new PlatformNotSupportedException("AVX-VNNI is not supported on this CPU");
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        float r = 0;
        if (vnni) RowV256<T, OneToken, VnniProducts>(ref w, ref a, 0, blocks, ref r);
        else RowV256<T, OneToken, MaddProducts>(ref w, ref a, 0, blocks, ref r);
        return r;
    }

    /// <summary><see cref="IQuantFormat.DotTokens"/> for the 32-element formats: the weights unpacked once for all the tokens.</summary>
    public static void DotTokens<T>(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) where T : IBlock32
    {
        if ((uint)tokens > 4 || destination.Length < tokens) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "1 to 4 tokens, each with a destination");
        ref float d = ref MemoryMarshal.GetReference(destination);
        if (isa == Isa.Scalar)
        {
            QuantMath.DotEachToken<T>(ref w, ref a, aStride, tokens, blocks, destination, isa);
            return;
        }
        bool wide = isa == Isa.Vector512;
        switch (tokens)
        {
            case 1: if (wide) RowV512<T, OneToken>(ref w, ref a, aStride, blocks, ref d); else RowV256<T, OneToken>(ref w, ref a, aStride, blocks, ref d); break;
            case 2: if (wide) RowV512<T, Tokens2>(ref w, ref a, aStride, blocks, ref d); else RowV256<T, Tokens2>(ref w, ref a, aStride, blocks, ref d); break;
            case 3: if (wide) RowV512<T, Tokens3>(ref w, ref a, aStride, blocks, ref d); else RowV256<T, Tokens3>(ref w, ref a, aStride, blocks, ref d); break;
            case 4: if (wide) RowV512<T, Tokens4>(ref w, ref a, aStride, blocks, ref d); else RowV256<T, Tokens4>(ref w, ref a, aStride, blocks, ref d); break;
        }
    }

    /// <summary>
    /// Four rows <paramref name="stride"/> bytes apart against one token: dst[k] is exactly <see cref="Dot{T}"/> of row k.
    /// Decoding reads the rows as four streams; here each activation block is loaded once for the four rows, and their
    /// four independent accumulator chains overlap.
    /// </summary>
    public static void Dot4Rows<T>(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) where T : IBlock32
    {
        if (isa == Isa.Scalar || !Avx2.IsSupported)
        {
            for (int k = 0; k < 4; k++) Unsafe.Add(ref dst, k) = Dot<T>(ref Unsafe.Add(ref w, stride * k), ref a, blocks, isa);
            return;
        }
        Dot4RowsV256<T>(ref w, stride, ref a, blocks, ref dst, AvxVnni.IsSupported);
    }

    /// <summary>
    /// <see cref="Dot4Rows{T}"/> on 256-bit vectors with the integer products chosen: vpdpbusd (<paramref name="vnni"/>,
    /// where AVX-VNNI is present) or vpmaddubsw + vpmaddwd, so tests hold both to the scalar twin on a CPU that has both.
    /// The signed formats take their values offset to unsigned bytes (no sign step; see RowsV256) with vpdpbusd, and
    /// without it where the offset values are small enough for int16 sums (Q4_0, Q5_0).
    /// </summary>
    internal static void Dot4RowsV256<T>(ref byte w, nint stride, ref byte a, int blocks, ref float dst, bool vnni) where T : IBlock32
    {
        if (vnni && !AvxVnni.IsSupported) throw new PlatformNotSupportedException("AVX-VNNI is not supported on this CPU");
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        if (vnni)
        {
            if (T.HasMin) RowsV256<T, VnniProducts>(ref w, stride, ref a, blocks, ref dst);
            else RowsV256<T, OffsetVnniProducts>(ref w, stride, ref a, blocks, ref dst);
        }
        else if (!T.HasMin && T.Offset <= MaxMaddOffset) RowsV256<T, OffsetMaddProducts>(ref w, stride, ref a, blocks, ref dst);
        else RowsV256<T, MaddProducts>(ref w, stride, ref a, blocks, ref dst);
    }

    /// <summary>
    /// <see cref="Dot4Rows{T}"/> on 256-bit vectors. A format with a minimum keeps each row's eight lanes; a signed one
    /// puts rows 0 and 1, and rows 2 and 3, in one vector whose halves are each row's four lanes
    /// (<see cref="PairAccumulator"/>), so a row pair's block is one conversion and one fma.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static void RowsV256<T, TP>(ref byte w, nint stride, ref byte a, int blocks, ref float dst) where T : IBlock32 where TP : IByteProducts
    {
        Accumulator a0 = default, a1 = default, a2 = default, a3 = default;
        PairAccumulator r01 = default, r23 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte w0 = ref Unsafe.Add(ref w, b * T.BlockBytes);
            ref byte w1 = ref Unsafe.Add(ref w0, stride);
            ref byte w2 = ref Unsafe.Add(ref w1, stride);
            ref byte w3 = ref Unsafe.Add(ref w2, stride);
            ref byte ab = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            var da = Vector256.Create(QuantMath.Single(ref ab));
            if (T.HasMin)
            {
                var xs = Activations(ref ab);
                a0.Add<T>(Products<T, TP>(T.Values256(ref w0), xs), Vector256.Create(QuantMath.Half(ref w0)) * da, Min<T>(ref w0), ref ab);
                a1.Add<T>(Products<T, TP>(T.Values256(ref w1), xs), Vector256.Create(QuantMath.Half(ref w1)) * da, Min<T>(ref w1), ref ab);
                a2.Add<T>(Products<T, TP>(T.Values256(ref w2), xs), Vector256.Create(QuantMath.Half(ref w2)) * da, Min<T>(ref w2), ref ab);
                a3.Add<T>(Products<T, TP>(T.Values256(ref w3), xs), Vector256.Create(QuantMath.Half(ref w3)) * da, Min<T>(ref w3), ref ab);
                continue;
            }
            var d01 = Vector256.Create(Vector128.Create(QuantMath.Half(ref w0)), Vector128.Create(QuantMath.Half(ref w1))) * da;
            var d23 = Vector256.Create(Vector128.Create(QuantMath.Half(ref w2)), Vector128.Create(QuantMath.Half(ref w3))) * da;
            if (TP.Offset)
            {
                // Σ (w + o) · x − o · Σx = Σ w · x per lane, exactly: no sign step, and −o · Σx once for the rows. Each
                // row pair's first sixteen values sit side by side against the activations' first sixteen in both
                // halves, then the last sixteen, so the sums land folded, one row in each half.
                ref byte x = ref Unsafe.Add(ref ab, QuantizedActivations.Q8Values);
                var low = Vector256.Create(Vector128.LoadUnsafe(ref x)).AsSByte();
                var high = Vector256.Create(Vector128.LoadUnsafe(ref x, 16)).AsSByte();
                var start = TP.Start(Vector256.Create((byte)T.Offset), low, high);
                var (l01, h01) = T.OffsetHalves256(ref w0, ref w1);
                var (l23, h23) = T.OffsetHalves256(ref w2, ref w3);
                r01.Add(TP.Halves(l01, h01, low, high, start), d01);
                r23.Add(TP.Halves(l23, h23, low, high, start), d23);
                continue;
            }
            var x8 = Activations(ref ab);
            r01.Add(Fold(Products<T, TP>(T.Values256(ref w0), x8), Products<T, TP>(T.Values256(ref w1), x8)), d01);
            r23.Add(Fold(Products<T, TP>(T.Values256(ref w2), x8), Products<T, TP>(T.Values256(ref w3), x8)), d23);
        }
        if (T.HasMin)
        {
            Store<T, Tokens4>(ref dst, a0, a1, a2, a3);
            return;
        }
        dst = QuantMath.Sum4(r01.Lanes.GetLower());
        Unsafe.Add(ref dst, 1) = QuantMath.Sum4(r01.Lanes.GetUpper());
        Unsafe.Add(ref dst, 2) = QuantMath.Sum4(r23.Lanes.GetLower());
        Unsafe.Add(ref dst, 3) = QuantMath.Sum4(r23.Lanes.GetUpper());
    }

    /// <summary>Two rows' (or tokens') eight lane sums folded to the twin's four lanes: the first's in the lower half, the second's in the upper.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Fold(Vector256<int> p0, Vector256<int> p1) => Avx2.Permute2x128(p0, p1, 0x20) + Avx2.Permute2x128(p0, p1, 0x31);

    /// <summary>Two (row, token) pairs of a signed format: the four folded lanes of each, one pair per half.</summary>
    private struct PairAccumulator
    {
        public Vector256<float> Lanes;

        /// <summary>Adds one block's folded sums at the scales d_w · d_a of each half.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector256<int> folded, Vector256<float> scale) =>
            Lanes = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(folded), scale, Lanes);
    }

    /// <summary>A block's minimum (0 for the signed formats, which have none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Min<T>(ref byte block) where T : IBlock32 => T.HasMin ? QuantMath.Half(ref Unsafe.Add(ref block, 2)) : 0;

    /// <summary>Sixteen packed bytes as 32 nibbles in element order: low nibbles (elements 0-15), then high nibbles (16-31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> Nibbles(ref byte p)
    {
        // The bytes in both halves, the upper half shifted by 4 (vpsrlvd), one mask: two vector operations where two
        // masks, a shift and an insert took four, which decode's compute-bound nibble formats feel.
        var q = Vector128.LoadUnsafe(ref p);
        var shifted = Avx2.ShiftRightLogicalVariable(Vector256.Create(q, q).AsUInt32(), Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4));
        return shifted.AsByte() & Vector256.Create((byte)0xF);
    }

    /// <summary>
    /// <see cref="Nibbles"/> of two blocks' 16 packed bytes in halves: the low nibbles of <paramref name="p"/>, then of
    /// <paramref name="q"/> (elements 0-15 of each), and their high nibbles the same way (elements 16-31).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector256<byte> Low, Vector256<byte> High) NibbleHalves(ref byte p, ref byte q)
    {
        var both = Vector256.Create(Vector128.LoadUnsafe(ref p), Vector128.LoadUnsafe(ref q));
        var mask = Vector256.Create((byte)0xF);
        return (both & mask, (both.AsUInt16() >> 4).AsByte() & mask);
    }

    /// <summary>
    /// <see cref="Bits"/> of two blocks' words in halves: bits 0-15 of the word at <paramref name="p"/>, then of the one
    /// at <paramref name="q"/>, then bits 16-31 of each the same way. Reads 4 bytes from each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector256<byte> Low, Vector256<byte> High) BitHalves(ref byte p, ref byte q)
    {
        var words = Vector256.Create(Vector128.Create(Unsafe.ReadUnaligned<uint>(ref p)), Vector128.Create(Unsafe.ReadUnaligned<uint>(ref q))).AsByte();
        var bit = Vector256.Create(0x8040201008040201UL).AsByte();
        var low = Avx2.Shuffle(words, Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0000000000000000UL, 0x0101010101010101UL).AsByte());
        var high = Avx2.Shuffle(words, Vector256.Create(0x0202020202020202UL, 0x0303030303030303UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
        return (Vector256.Equals(low & bit, bit), Vector256.Equals(high & bit, bit));
    }

    /// <summary>
    /// Byte i is 0xFF where bit i of the little-endian word at <paramref name="p"/> is set, else 0 (ggml's
    /// bytes_from_bits_32). Reads 16 bytes from <paramref name="p"/>, so the word must not end its block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> Bits(ref byte p)
    {
        // Byte i takes byte i / 8 of the word (vpshufb picks within each 128-bit half, and each half holds the whole word).
        // The word comes by a vector load and a broadcast, not by a general register and vmovd.
        var word = Avx2.BroadcastScalarToVector256(Vector128.LoadUnsafe(ref p).AsUInt32());
        var spread = Avx2.Shuffle(word.AsByte(), Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
        var bit = Vector256.Create(0x8040201008040201UL).AsByte();
        return Vector256.Equals(spread & bit, bit);
    }

    /// <summary>The eight int32 sums of four consecutive products of weight values <paramref name="w"/> and activations <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Products<T, TP>(Vector256<byte> w, Vector256<sbyte> x) where T : IBlock32 where TP : IByteProducts
    {
        if (T.HasMin) return TP.Sum4(w, x);
        return TP.Sum4(Avx2.Abs(w.AsSByte()), Avx2.Sign(x, w.AsSByte()));
    }

    /// <summary>The 256-bit Products of two blocks at once: lanes 0-7 are the first block's, 8-15 the second's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Products<T>(Vector512<byte> w, Vector512<sbyte> x) where T : IBlock32
    {
        Vector512<byte> u = w;
        Vector512<sbyte> s = x;
        if (!T.HasMin)
        {
            // AVX-512 has no vpsignb; where w is 0 so is |w|, so negating x where w < 0 is enough.
            u = Avx512BW.Abs(w.AsSByte());
            s = Vector512.ConditionalSelect(Vector512.LessThan(w.AsSByte(), Vector512<sbyte>.Zero), -x, x);
        }
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, s), Vector512.Create((short)1));
    }

    /// <summary>One token's accumulators: the eight lanes and the minimum term, or a signed format's four lanes.</summary>
    private struct Accumulator
    {
        public Vector256<float> Lanes;
        public Vector128<float> Folded;
        public float Min;

        /// <summary>Adds one block's lane sums at scale dw · d_a, and (for a format with a minimum) min · s_a.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add<T>(Vector256<int> p, float dw, float min, ref byte activation) where T : IBlock32 =>
            Add<T>(p, Vector256.Create(dw) * Vector256.Create(QuantMath.Single(ref activation)), min, ref activation);

        /// <summary>As the other overload, with d_w · d_a in every lane (a broadcast load and a vector multiply: one vector operation fewer than a scalar multiply and its broadcast).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add<T>(Vector256<int> p, Vector256<float> scale, float min, ref byte activation) where T : IBlock32
        {
            if (!T.HasMin)
            {
                Folded = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(p.GetLower() + p.GetUpper()), scale.GetLower(), Folded);
                return;
            }
            Lanes = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), scale, Lanes);
            Min = MathF.FusedMultiplyAdd(min, QuantMath.Single(ref Unsafe.Add(ref activation, 4)), Min);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly float Result<T>() where T : IBlock32 => T.HasMin ? QuantMath.Sum8(Lanes) + Min : QuantMath.Sum4(Folded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Activations(ref byte block) => Vector256.LoadUnsafe(ref Unsafe.Add(ref block, QuantizedActivations.Q8Values)).AsSByte();

    /// <summary>Block <paramref name="b"/> of one row against TN tokens on 256-bit vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block256<T, TN, TP>(ref byte w, ref byte a, nint aStride, int b, ref Accumulator a0, ref Accumulator a1, ref Accumulator a2, ref Accumulator a3)
        where T : IBlock32 where TN : ITokens where TP : IByteProducts
    {
        ref byte wb = ref Unsafe.Add(ref w, b * T.BlockBytes);
        ref byte ab = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
        var v = T.Values256(ref wb);
        float dw = QuantMath.Half(ref wb), min = Min<T>(ref wb);
        a0.Add<T>(Products<T, TP>(v, Activations(ref ab)), dw, min, ref ab);
        if (TN.Count > 1) a1.Add<T>(Products<T, TP>(v, Activations(ref Unsafe.Add(ref ab, aStride))), dw, min, ref Unsafe.Add(ref ab, aStride));
        if (TN.Count > 2) a2.Add<T>(Products<T, TP>(v, Activations(ref Unsafe.Add(ref ab, 2 * aStride))), dw, min, ref Unsafe.Add(ref ab, 2 * aStride));
        if (TN.Count > 3) a3.Add<T>(Products<T, TP>(v, Activations(ref Unsafe.Add(ref ab, 3 * aStride))), dw, min, ref Unsafe.Add(ref ab, 3 * aStride));
    }

    private static void RowV256<T, TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where T : IBlock32 where TN : ITokens
    {
        if (!Avx2.IsSupported)
        {
            for (int t = 0; t < TN.Count; t++) Unsafe.Add(ref dst, t) = DotScalar<T>(ref w, ref Unsafe.Add(ref a, aStride * t), blocks);
            return;
        }
        if (AvxVnni.IsSupported) RowV256<T, TN, VnniProducts>(ref w, ref a, aStride, blocks, ref dst);
        else RowV256<T, TN, MaddProducts>(ref w, ref a, aStride, blocks, ref dst);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static void RowV256<T, TN, TP>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where T : IBlock32 where TN : ITokens where TP : IByteProducts
    {
        Accumulator a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < blocks; b++) Block256<T, TN, TP>(ref w, ref a, aStride, b, ref a0, ref a1, ref a2, ref a3);
        Store<T, TN>(ref dst, a0, a1, a2, a3);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static void RowV512<T, TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where T : IBlock32 where TN : ITokens
    {
        if (!Avx512BW.IsSupported)
        {
            RowV256<T, TN>(ref w, ref a, aStride, blocks, ref dst);
            return;
        }
        Accumulator a0 = default, a1 = default, a2 = default, a3 = default;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            ref byte wb = ref Unsafe.Add(ref w, b * T.BlockBytes);
            ref byte wc = ref Unsafe.Add(ref wb, T.BlockBytes);
            ref byte ab = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            var v = Vector512.Create(T.Values256(ref wb), T.Values256(ref wc));
            float d0 = QuantMath.Half(ref wb), d1 = QuantMath.Half(ref wc);
            float m0 = Min<T>(ref wb), m1 = Min<T>(ref wc);
            Pair<T>(v, d0, d1, m0, m1, ref ab, ref a0);
            if (TN.Count > 1) Pair<T>(v, d0, d1, m0, m1, ref Unsafe.Add(ref ab, aStride), ref a1);
            if (TN.Count > 2) Pair<T>(v, d0, d1, m0, m1, ref Unsafe.Add(ref ab, 2 * aStride), ref a2);
            if (TN.Count > 3) Pair<T>(v, d0, d1, m0, m1, ref Unsafe.Add(ref ab, 3 * aStride), ref a3);
        }
        if (b < blocks) Block256<T, TN, MaddProducts>(ref w, ref a, aStride, b, ref a0, ref a1, ref a2, ref a3);
        Store<T, TN>(ref dst, a0, a1, a2, a3);

        // Two blocks' integer sums in one 512-bit pass; their float steps stay one block after the other.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Pair<TP>(Vector512<byte> v, float d0, float d1, float m0, float m1, ref byte ab, ref Accumulator acc) where TP : IBlock32
        {
            ref byte ac = ref Unsafe.Add(ref ab, QuantizedActivations.Q8Bytes);
            var p = Products<TP>(v, Vector512.Create(Activations(ref ab), Activations(ref ac)));
            acc.Add<TP>(p.GetLower(), d0, m0, ref ab);
            acc.Add<TP>(p.GetUpper(), d1, m1, ref ac);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<T, TN>(ref float dst, Accumulator a0, Accumulator a1, Accumulator a2, Accumulator a3) where T : IBlock32 where TN : ITokens
    {
        dst = a0.Result<T>();
        if (TN.Count > 1) Unsafe.Add(ref dst, 1) = a1.Result<T>();
        if (TN.Count > 2) Unsafe.Add(ref dst, 2) = a2.Result<T>();
        if (TN.Count > 3) Unsafe.Add(ref dst, 3) = a3.Result<T>();
    }

    /// <summary>Sums of four consecutive products of unsigned and signed bytes into int32 lanes.</summary>
    private interface IByteProducts
    {
        static abstract Vector256<int> Sum4(Vector256<byte> u, Vector256<sbyte> s);

        /// <summary>Whether the four-row decode takes a signed format's values offset to unsigned (<see cref="IBlock32.OffsetHalves256"/>).</summary>
        static virtual bool Offset => false;

        /// <summary>
        /// For <see cref="Offset"/> products, −o · Σx of activations in halves (both halves' first sixteen values in
        /// <paramref name="low"/>, last sixteen in <paramref name="high"/>): what every row's sums start from, in the
        /// products' own lanes (int32, or int16 pairs for vpmaddubsw), computed once for the rows.
        /// </summary>
        static virtual Vector256<int> Start(Vector256<byte> o, Vector256<sbyte> low, Vector256<sbyte> high) => throw new NotSupportedException("not offset products");

        /// <summary>
        /// For <see cref="Offset"/> products, the twin's folded lanes of values w + o in halves with activations in
        /// halves, from <see cref="Start"/>: Σ w · x exactly, one (row, token) pair in each half.
        /// </summary>
        static virtual Vector256<int> Halves(Vector256<byte> lowValues, Vector256<byte> highValues, Vector256<sbyte> low, Vector256<sbyte> high, Vector256<int> start) =>
            throw new NotSupportedException("not offset products");
    }

    /// <summary><see cref="VnniProducts"/>, with the signed formats' values offset to unsigned bytes (the four-row decode and the four-by-two tile).</summary>
    private readonly struct OffsetVnniProducts : IByteProducts
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum4(Vector256<byte> u, Vector256<sbyte> s) => VnniProducts.Sum4(u, s);

        public static bool Offset => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Start(Vector256<byte> o, Vector256<sbyte> low, Vector256<sbyte> high) =>
            Vector256<int>.Zero - AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, o, low), o, high);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Halves(Vector256<byte> lowValues, Vector256<byte> highValues, Vector256<sbyte> low, Vector256<sbyte> high, Vector256<int> start) =>
            AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(start, lowValues, low), highValues, high);
    }

    /// <summary>
    /// <see cref="MaddProducts"/>, with a signed format's values offset to unsigned bytes (the four-row decode and the
    /// four-by-two tile) where the offset is at most <see cref="MaxMaddOffset"/>: a pair of (w + o) · x is then at most
    /// 2 · 31 · 128 and a lane's Σ w · x over four elements at most 4 · 16 · 128, so the two halves' pairs add in int16
    /// before one vpmaddwd.
    /// </summary>
    private readonly struct OffsetMaddProducts : IByteProducts
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum4(Vector256<byte> u, Vector256<sbyte> s) => MaddProducts.Sum4(u, s);

        public static bool Offset => true;

        // −o times the activations' pairs, both halves added, as int16 lanes.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Start(Vector256<byte> o, Vector256<sbyte> low, Vector256<sbyte> high) =>
            (Vector256<short>.Zero - (Avx2.MultiplyAddAdjacent(o, low) + Avx2.MultiplyAddAdjacent(o, high))).AsInt32();

        // The pairs of both halves added to the start in int16, then adjacent int16 lanes into int32.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Halves(Vector256<byte> lowValues, Vector256<byte> highValues, Vector256<sbyte> low, Vector256<sbyte> high, Vector256<int> start) =>
            Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lowValues, low) + Avx2.MultiplyAddAdjacent(highValues, high) + start.AsInt16(), Vector256.Create((short)1));
    }

    private readonly struct VnniProducts : IByteProducts
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum4(Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s);
    }

    private readonly struct MaddProducts : IByteProducts
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum4(Vector256<byte> u, Vector256<sbyte> s) => Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));
    }
}
