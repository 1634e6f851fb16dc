using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The prefill tiles: eight (row, token) accumulators held in registers while a row's blocks pass, so each activation
/// block is loaded once for several rows and each weight block once for several tokens. The tiles read rows prepared
/// once (<see cref="Prepare{T}"/>): each block's 32 values unpacked to bytes, with their absolute values for the signed
/// formats (or, with AVX-VNNI, offset to unsigned bytes, which replaces the sign step), and its binary16 scale and
/// minimum as float32. A prefill prepares a tile's rows once for a whole group of tokens, so unpacking nibbles and high
/// bits costs a small part of what it did per tile and every format is one load per block, as Q8_0 is. Signed
/// formats take four rows by two tokens, which shares each activation load four ways, and their four-lane sums put a
/// row's two tokens in one vector, so each (row, block) is one conversion and one fma with a scale vector shuffled
/// from registers, not two of each with two broadcast loads; the formats with a minimum take two rows by four tokens,
/// whose minimum terms are one four-lane vector per row (<see cref="IBlock32.TileRows"/>). Every (row, token) keeps
/// the scalar twin's steps, so the bits are those of <see cref="Dot{T}"/>.
/// </remarks>
internal static partial class Block32
{
    // Prepared rows: each block's |w| (or w, for the formats with a minimum) and w, 32 bytes each, row after row; then
    // the scales as float32, the rows' scales of each block side by side, so a tile loads them as one vector; then the
    // minimums in the same order. For the offset tiles (the signed formats with AVX-VNNI, Q4_0 and Q5_0 without it) a
    // block holds w + o as unsigned bytes instead, its first sixteen in both halves of a vector and then its last
    // sixteen (see Tile4x2Halves).
    private const int PreparedValueBytes = 64;

    /// <summary>Tokens a tile of format <typeparamref name="T"/> covers: 8 / <see cref="IBlock32.TileRows"/>.</summary>
    public static int TileTokens<T>() where T : IBlock32 => 8 / T.TileRows;

    /// <summary>Bytes <see cref="Prepare{T}"/> writes for <paramref name="rows"/> rows of <paramref name="blocks"/> blocks.</summary>
    public static nint PreparedBytes(int rows, int blocks) => (nint)rows * blocks * (PreparedValueBytes + 2 * sizeof(float));

    /// <summary>
    /// Unpacks <paramref name="rows"/> rows of <paramref name="blocks"/> blocks (<paramref name="rowBytes"/> apart) to
    /// <paramref name="destination"/> (<see cref="PreparedBytes"/> bytes) for <see cref="PreparedTile{T}"/>. Callers
    /// have checked <see cref="Avx2.IsSupported"/>; <paramref name="vnni"/> (AVX-VNNI present) must be what the tile is then given.
    /// </summary>
    public static unsafe void Prepare<T>(ref byte w, nint rowBytes, int rows, int blocks, byte* destination, bool vnni) where T : IBlock32 =>
        PrepareRows<T>(ref w, rowBytes, rows, blocks, destination, OffsetTile<T>(vnni) ? PreparedLayout.Halves : PreparedLayout.Values);

    /// <summary>
    /// Whether a signed format's tile takes its values offset to unsigned bytes (<see cref="IBlock32.Offset256"/>): with
    /// vpdpbusd, and without it where int16 holds the sums (see <see cref="Tile4x2Halves{TP}"/>).
    /// </summary>
    private static bool OffsetTile<T>(bool vnni) where T : IBlock32 => !T.HasMin && (vnni || T.Offset <= MaxMaddOffset);

    // What a prepared block holds after its first 32 bytes (|w|, or w for the formats with a minimum); Halves replaces both.
    private enum PreparedLayout
    {
        Values,   // w
        Halves,   // w + offset as [0..15 | 0..15], [16..31 | 16..31] (the offset tiles), in place of |w| and w
        SignMask, // 0xFF where w < 0, else 0, with a row pair's blocks side by side (the 512-bit tile)
    }

    private static unsafe void PrepareRows<T>(ref byte w, nint rowBytes, int rows, int blocks, byte* destination, PreparedLayout layout) where T : IBlock32
    {
        float* scales = (float*)(destination + (nint)rows * blocks * PreparedValueBytes), mins = scales + (nint)rows * blocks;
        for (int r = 0; r < rows; r++)
        {
            ref byte row = ref Unsafe.Add(ref w, rowBytes * r);
            byte* values = destination + (nint)r * blocks * PreparedValueBytes;
            for (int b = 0; b < blocks; b++)
            {
                ref byte block = ref Unsafe.Add(ref row, b * T.BlockBytes);
                byte* at = values + (nint)b * PreparedValueBytes;
                var v = T.Values256(ref block);
                switch (layout)
                {
                    case PreparedLayout.Halves:
                        var u = T.Offset256(ref block);
                        Vector256.Create(u.GetLower(), u.GetLower()).Store(at);
                        Vector256.Create(u.GetUpper(), u.GetUpper()).Store(at + 32);
                        break;
                    case PreparedLayout.SignMask:
                        // Row pairs side by side: block b of rows 2q, 2q + 1 is |w| of both, then both masks.
                        byte* pair = destination + ((nint)(r >> 1) * blocks + b) * 2 * PreparedValueBytes + 32 * (r & 1);
                        Avx2.Abs(v.AsSByte()).Store(pair);
                        Vector256.LessThan(v.AsSByte(), Vector256<sbyte>.Zero).Store((sbyte*)(pair + 64));
                        break;
                    default:
                        (T.HasMin ? v : Avx2.Abs(v.AsSByte())).Store(at);
                        v.Store(at + 32);
                        break;
                }
                scales[(nint)b * rows + r] = QuantMath.Half(ref block);
                mins[(nint)b * rows + r] = Min<T>(ref block);
            }
        }
    }

    /// <summary>
    /// Rows r &lt; <see cref="IBlock32.TileRows"/> (<paramref name="rowBytes"/> apart) against tokens t &lt; <see cref="TileTokens{T}"/>
    /// (<paramref name="aStride"/> apart): y[t · <paramref name="yStride"/> + r] is exactly <see cref="Dot{T}"/> of row r with token t.
    /// The 256-bit tile serves the 512-bit path too: the bits are the same. Prefill prepares rows once for many tiles instead
    /// (<see cref="Prepare{T}"/>, <see cref="PreparedTile{T}"/>), and where <see cref="WideTiles.Preferred"/> takes the signed
    /// formats' 512-bit tile (<see cref="WideTile{T}"/>), two rows to a vector.
    /// </summary>
    public static unsafe void DotTile<T>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride, Isa isa) where T : IBlock32
    {
        if (isa == Isa.Scalar || !Avx2.IsSupported)
        {
            for (int t = 0; t < TileTokens<T>(); t++)
                for (int r = 0; r < T.TileRows; r++)
                    y[t * yStride + r] = Dot<T>(ref Unsafe.Add(ref w, rowBytes * r), ref Unsafe.Add(ref a, aStride * t), blocks, isa);
            return;
        }
        DotTile256<T>(ref w, rowBytes, ref a, aStride, blocks, y, yStride, AvxVnni.IsSupported);
    }

    /// <summary><see cref="DotTile{T}"/> with the integer products chosen, so tests hold both to the scalar twin where the CPU has both.</summary>
    internal static unsafe void DotTile256<T>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni) where T : IBlock32
    {
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        var prepared = new byte[PreparedBytes(T.TileRows, blocks)];
        fixed (byte* p = prepared)
        {
            Prepare<T>(ref w, rowBytes, T.TileRows, blocks, p, vnni);
            PreparedTile<T>(p, ref a, aStride, blocks, y, yStride, vnni);
        }
    }

    /// <summary>
    /// <see cref="DotTile{T}"/> of the <see cref="IBlock32.TileRows"/> rows <see cref="Prepare{T}"/> wrote at
    /// <paramref name="prepared"/>, with vpdpbusd where <paramref name="vnni"/> (AVX-VNNI), else vpmaddubsw + vpmaddwd.
    /// </summary>
    public static unsafe void PreparedTile<T>(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni) where T : IBlock32
    {
        if (vnni && !AvxVnni.IsSupported) throw new PlatformNotSupportedException("AVX-VNNI is not supported on this CPU");
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        if (T.TileRows == 4 && T.HasMin) throw new NotSupportedException("the four-row tile takes signed formats only");
        bool four = T.TileRows == 4;
        if (vnni)
        {
            if (four) Tile4x2Halves<OffsetVnniProducts>(prepared, (byte)T.Offset, ref a, aStride, blocks, y, yStride);
            else Tile2x4<T, VnniProducts>(prepared, ref a, aStride, blocks, y, yStride);
        }
        else if (four && OffsetTile<T>(vnni)) Tile4x2Halves<OffsetMaddProducts>(prepared, (byte)T.Offset, ref a, aStride, blocks, y, yStride);
        else if (four) Tile4x2(prepared, ref a, aStride, blocks, y, yStride);
        else Tile2x4<T, MaddProducts>(prepared, ref a, aStride, blocks, y, yStride);
    }

    /// <summary>
    /// Four rows by two tokens, for Q8_0 without AVX-VNNI: both tokens' activations stay in registers while the
    /// rows pass; each (row, token, block) is |w| times x with w's sign (ggml's trick) by vpmaddubsw and vpmaddwd, and a
    /// row's two tokens are folded to four lanes each into one vector, converted and scaled at once.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static unsafe void Tile4x2(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride)
    {
        nint row = (nint)blocks * PreparedValueBytes;
        byte* p0 = prepared, p1 = p0 + row, p2 = p1 + row, p3 = p2 + row;
        float* scales = (float*)(p0 + 4 * row);
        // c_r: row r's four lanes with token 0 (lower half) and token 1 (upper half).
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            var x0 = Activations(ref a0);
            var x1 = Activations(ref a1);
            var d = Scales(scales + 4 * (nint)b, ref a0, ref a1);
            nint at = (nint)b * PreparedValueBytes;
            c0 = Row(p0 + at, x0, x1, Avx.Permute(d, 0x00), c0);
            c1 = Row(p1 + at, x0, x1, Avx.Permute(d, 0x55), c1);
            c2 = Row(p2 + at, x0, x1, Avx.Permute(d, 0xAA), c2);
            c3 = Row(p3 + at, x0, x1, Avx.Permute(d, 0xFF), c3);
        }
        Store4x2(y, yStride, c0, c1, c2, c3);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Row(byte* block, Vector256<sbyte> x0, Vector256<sbyte> x1, Vector256<float> d, Vector256<float> c)
        {
            var u = Vector256.Load(block);
            var v = Vector256.Load(block + 32).AsSByte();
            var s0 = MaddProducts.Sum4(u, Avx2.Sign(x0, v));
            var s1 = MaddProducts.Sum4(u, Avx2.Sign(x1, v));
            return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Fold(s0, s1)), d, c);
        }
    }

    /// <summary>
    /// Four rows by two tokens for the signed formats' values offset to unsigned bytes (prepared as w + o in halves):
    /// each token's first sixteen activations in one half of a vector and its last sixteen in the other's, so a row's two
    /// products land already folded, token 0 in the lower half and token 1 in the upper. The sums start from −o · Σx,
    /// once per block for all four rows, so each lane is Σ w · x exactly. With AVX-VNNI, two vpdpbusd per (row, block);
    /// without it (Q4_0, Q5_0), two vpmaddubsw added in int16 and one vpmaddwd (<see cref="OffsetMaddProducts"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static unsafe void Tile4x2Halves<TP>(byte* prepared, byte offset, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where TP : IByteProducts
    {
        nint row = (nint)blocks * PreparedValueBytes;
        byte* p0 = prepared, p1 = p0 + row, p2 = p1 + row, p3 = p2 + row;
        float* scales = (float*)(p0 + 4 * row);
        var o = Vector256.Create(offset);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            ref byte v0 = ref Unsafe.Add(ref a0, QuantizedActivations.Q8Values);
            ref byte v1 = ref Unsafe.Add(ref a1, QuantizedActivations.Q8Values);
            var low = Vector256.Create(Vector128.LoadUnsafe(ref v0), Vector128.LoadUnsafe(ref v1)).AsSByte();
            var high = Vector256.Create(Vector128.LoadUnsafe(ref v0, 16), Vector128.LoadUnsafe(ref v1, 16)).AsSByte();
            var start = TP.Start(o, low, high);
            var d = Scales(scales + 4 * (nint)b, ref a0, ref a1);
            nint at = (nint)b * PreparedValueBytes;
            c0 = Row(p0 + at, low, high, start, Avx.Permute(d, 0x00), c0);
            c1 = Row(p1 + at, low, high, start, Avx.Permute(d, 0x55), c1);
            c2 = Row(p2 + at, low, high, start, Avx.Permute(d, 0xAA), c2);
            c3 = Row(p3 + at, low, high, start, Avx.Permute(d, 0xFF), c3);
        }
        Store4x2(y, yStride, c0, c1, c2, c3);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<float> Row(byte* block, Vector256<sbyte> low, Vector256<sbyte> high, Vector256<int> start, Vector256<float> d, Vector256<float> c) =>
            Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(TP.Halves(Vector256.Load(block), Vector256.Load(block + 32), low, high, start)), d, c);
    }

    /// <summary>The largest offset whose sums the offset tile and the four-row decode keep in int16 (Q5_0's; Q8_0's 128 would saturate vpmaddubsw).</summary>
    private const int MaxMaddOffset = 16;

    /// <summary>
    /// A block's eight scales d_w · d_a of four rows and two tokens, lane 4t + r, from which <see cref="Avx.Permute(Vector256{float}, byte)"/>
    /// by r · 0x55 takes row r's: token 0's in the lower half, token 1's in the upper.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> Scales(float* rowScales, ref byte a0, ref byte a1) =>
        Avx.BroadcastVector128ToVector256(rowScales) * Vector256.Create(Vector128.Create(QuantMath.Single(ref a0)), Vector128.Create(QuantMath.Single(ref a1)));

    /// <summary>Row r's results from c_r: token 0 the lower half's <see cref="QuantMath.Sum4(Vector128{float})"/>, token 1 the upper's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store4x2(float* y, nint yStride, Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
    {
        y[0] = QuantMath.Sum4(c0.GetLower()); y[1] = QuantMath.Sum4(c1.GetLower()); y[2] = QuantMath.Sum4(c2.GetLower()); y[3] = QuantMath.Sum4(c3.GetLower());
        y += yStride;
        y[0] = QuantMath.Sum4(c0.GetUpper()); y[1] = QuantMath.Sum4(c1.GetUpper()); y[2] = QuantMath.Sum4(c2.GetUpper()); y[3] = QuantMath.Sum4(c3.GetUpper());
    }

    /// <summary>Two rows by four tokens: both rows' values stay in registers while the tokens pass.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static unsafe void Tile2x4<T, TP>(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where T : IBlock32 where TP : IByteProducts
    {
        nint row = (nint)blocks * PreparedValueBytes;
        byte* p0 = prepared, p1 = p0 + row;
        float* scales = (float*)(p0 + 2 * row), mins = scales + 2 * (nint)blocks;
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        // Formats with a minimum: lane t holds token t's Σ min · s_a, each lane the scalar twin's fma chain.
        Vector128<float> m0 = default, m1 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            ref byte a2 = ref Unsafe.Add(ref a1, aStride);
            ref byte a3 = ref Unsafe.Add(ref a2, aStride);
            nint at = (nint)b * PreparedValueBytes;
            var u0 = Vector256.Load(p0 + at);
            var u1 = Vector256.Load(p1 + at);
            var v0 = T.HasMin ? u0 : Vector256.Load(p0 + at + 32);
            var v1 = T.HasMin ? u1 : Vector256.Load(p1 + at + 32);
            var d0 = Vector256.Create(scales[2 * b]);
            var d1 = Vector256.Create(scales[2 * b + 1]);
            Token(u0, v0, d0, ref c00, u1, v1, d1, ref c10, ref a0);
            Token(u0, v0, d0, ref c01, u1, v1, d1, ref c11, ref a1);
            Token(u0, v0, d0, ref c02, u1, v1, d1, ref c12, ref a2);
            Token(u0, v0, d0, ref c03, u1, v1, d1, ref c13, ref a3);
            if (T.HasMin)
            {
                var s = Vector128.Create(QuantMath.Single(ref Unsafe.Add(ref a0, 4)), QuantMath.Single(ref Unsafe.Add(ref a1, 4)),
                    QuantMath.Single(ref Unsafe.Add(ref a2, 4)), QuantMath.Single(ref Unsafe.Add(ref a3, 4)));
                m0 = Vector128.FusedMultiplyAdd(Vector128.Create(mins[2 * b]), s, m0);
                m1 = Vector128.FusedMultiplyAdd(Vector128.Create(mins[2 * b + 1]), s, m1);
            }
        }
        Store(y, c00, c10, m0, m1, 0);
        Store(y + yStride, c01, c11, m0, m1, 1);
        Store(y + 2 * yStride, c02, c12, m0, m1, 2);
        Store(y + 3 * yStride, c03, c13, m0, m1, 3);

        // One token's block against both rows: its activations loaded once; each product at scale d_w · d_a, as the twin.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Token(Vector256<byte> u0, Vector256<byte> v0, Vector256<float> d0, ref Vector256<float> c0,
            Vector256<byte> u1, Vector256<byte> v1, Vector256<float> d1, ref Vector256<float> c1, ref byte ab)
        {
            var x = Activations(ref ab);
            var da = Vector256.Create(QuantMath.Single(ref ab));
            var x0 = T.HasMin ? x : Avx2.Sign(x, v0.AsSByte());
            var x1 = T.HasMin ? x : Avx2.Sign(x, v1.AsSByte());
            c0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(TP.Sum4(u0, x0)), d0 * da, c0);
            c1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(TP.Sum4(u1, x1)), d1 * da, c1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* y, Vector256<float> c0, Vector256<float> c1, Vector128<float> m0, Vector128<float> m1, int t)
        {
            float r0 = QuantMath.Sum8(c0), r1 = QuantMath.Sum8(c1);
            y[0] = T.HasMin ? r0 + m0.GetElement(t) : r0;
            y[1] = T.HasMin ? r1 + m1.GetElement(t) : r1;
        }
    }
}
