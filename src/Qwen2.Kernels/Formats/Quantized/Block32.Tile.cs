using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The prefill tiles: eight (row, token) accumulators held in registers while a row's blocks pass, so each activation
/// block is loaded once for several rows and each weight block once for several tokens. The tiles read rows prepared
/// once (<see cref="Prepare{T}"/>): each block's 32 values unpacked to bytes, with their absolute values for the signed
/// formats (or, with AVX-VNNI, the offset sums that replace the sign step), and its binary16 scale and minimum as float32. A prefill prepares a tile's rows once for a whole group of
/// tokens, so unpacking nibbles and high bits costs a sixty-fourth of what it did per tile and every format is one load
/// per block, as Q8_0 is. Signed formats take four rows by two tokens, which shares each activation load four ways;
/// the formats with a minimum take two rows by four tokens, whose minimum terms are one four-lane vector per row
/// (<see cref="IBlock32.TileRows"/>). Every (row, token) keeps the scalar twin's steps, so the bits are those of
/// <see cref="Dot{T}"/>.
/// </remarks>
internal static partial class Block32
{
    // Prepared rows: each block's |w| (or w, for the formats with a minimum) and w, 32 bytes each, row after row; then
    // the scales as float32, the rows' scales of each block side by side, so a tile loads them as one vector; then the
    // minimums in the same order. For the signed formats' VNNI tile a block holds w and, as eight int32, −128 times
    // the sum of each four of its values instead (see BiasedVnniRow).
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
        PrepareRows<T>(ref w, rowBytes, rows, blocks, destination, vnni && !T.HasMin ? PreparedLayout.Bias : PreparedLayout.Values);

    // What a prepared block holds after its first 32 bytes (|w|, or w for the formats with a minimum, or w for Bias).
    private enum PreparedLayout
    {
        Values,   // w
        Bias,     // eight int32 −128 · Σ of four values (the VNNI tile)
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
                    case PreparedLayout.Bias:
                        v.Store(at);
                        (-AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Create((byte)0x80), v.AsSByte())).Store((int*)(at + 32));
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
            if (four) Tile4x2<BiasedVnniRow>(prepared, ref a, aStride, blocks, y, yStride);
            else Tile2x4<T, VnniProducts>(prepared, ref a, aStride, blocks, y, yStride);
        }
        else if (four) Tile4x2<SignedRow<MaddProducts>>(prepared, ref a, aStride, blocks, y, yStride);
        else Tile2x4<T, MaddProducts>(prepared, ref a, aStride, blocks, y, yStride);
    }

    /// <summary>
    /// Four rows by two tokens, for signed formats: both tokens' activations stay in registers while the rows pass; each
    /// (row, token, block) is <typeparamref name="TR"/>'s integer products, a conversion and an fma.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static unsafe void Tile4x2<TR>(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride) where TR : ISignedRow
    {
        nint row = (nint)blocks * PreparedValueBytes;
        byte* p0 = prepared, p1 = p0 + row, p2 = p1 + row, p3 = p2 + row;
        float* scales = (float*)(p0 + 4 * row);
        // Each block's eight scales d_w · d_a, lane 4t + r, multiplied at once and read back as broadcasts: loads, where
        // eight broadcasts and multiplies would compete with the products for the vector ports.
        float* d = stackalloc float[8];
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            var x0 = TR.Activations(ref a0);
            var x1 = TR.Activations(ref a1);
            var dw = Avx.BroadcastVector128ToVector256(scales + 4 * (nint)b);
            var da = Vector256.Create(Vector128.Create(QuantMath.Single(ref a0)), Vector128.Create(QuantMath.Single(ref a1)));
            (dw * da).Store(d);
            nint at = (nint)b * PreparedValueBytes;
            Row(p0 + at, d, x0, x1, ref c00, ref c01);
            Row(p1 + at, d + 1, x0, x1, ref c10, ref c11);
            Row(p2 + at, d + 2, x0, x1, ref c20, ref c21);
            Row(p3 + at, d + 3, x0, x1, ref c30, ref c31);
        }
        y[0] = QuantMath.Sum8(c00); y[1] = QuantMath.Sum8(c10); y[2] = QuantMath.Sum8(c20); y[3] = QuantMath.Sum8(c30);
        y += yStride;
        y[0] = QuantMath.Sum8(c01); y[1] = QuantMath.Sum8(c11); y[2] = QuantMath.Sum8(c21); y[3] = QuantMath.Sum8(c31);

        // One row's block against both tokens, at the scales d[0] (token 0) and d[4] (token 1).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Row(byte* block, float* d, Vector256<byte> x0, Vector256<byte> x1, ref Vector256<float> c0, ref Vector256<float> c1)
        {
            var (s0, s1) = TR.Sums(block, x0, x1);
            c0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s0), Avx.BroadcastScalarToVector256(d), c0);
            c1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s1), Avx.BroadcastScalarToVector256(d + 4), c1);
        }
    }

    /// <summary>How <see cref="Tile4x2{TR}"/> forms a prepared block's eight lane sums Σ x · w with two tokens.</summary>
    private unsafe interface ISignedRow
    {
        /// <summary>A token's activation block as the products take it.</summary>
        static abstract Vector256<byte> Activations(ref byte block);

        /// <summary>The prepared block's lane sums with tokens <paramref name="x0"/> and <paramref name="x1"/>.</summary>
        static abstract (Vector256<int>, Vector256<int>) Sums(byte* block, Vector256<byte> x0, Vector256<byte> x1);
    }

    /// <summary>|w| (first 32 bytes) times x with w's sign (ggml's trick), by <typeparamref name="TP"/>.</summary>
    private readonly unsafe struct SignedRow<TP> : ISignedRow where TP : IByteProducts
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Activations(ref byte block) => Block32.Activations(ref block).AsByte();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<int>, Vector256<int>) Sums(byte* block, Vector256<byte> x0, Vector256<byte> x1)
        {
            var u = Vector256.Load(block);
            var v = Vector256.Load(block + 32).AsSByte();
            return (TP.Sum4(u, Avx2.Sign(x0.AsSByte(), v)), TP.Sum4(u, Avx2.Sign(x1.AsSByte(), v)));
        }
    }

    /// <summary>
    /// vpdpbusd with no sign step: the activations as unsigned bytes x + 128 against the signed values w (first 32 bytes),
    /// the sum starting at the block's prepared −128 · Σw (next 32), so each int32 lane is Σ x · w exactly: one vector
    /// operation fewer per (row, token, block), the activations' flip shared by four rows.
    /// </summary>
    private readonly unsafe struct BiasedVnniRow : ISignedRow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Activations(ref byte block) => Block32.Activations(ref block).AsByte() ^ Vector256.Create((byte)0x80);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<int>, Vector256<int>) Sums(byte* block, Vector256<byte> x0, Vector256<byte> x1)
        {
            var w = Vector256.Load(block).AsSByte();
            var bias = Vector256.Load((int*)(block + 32));
            return (AvxVnni.MultiplyWideningAndAdd(bias, x0, w), AvxVnni.MultiplyWideningAndAdd(bias, x1, w));
        }
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
