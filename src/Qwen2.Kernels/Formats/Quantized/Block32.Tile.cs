using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The prefill tiles: eight (row, token) accumulators held in registers while a row's blocks pass, so each weight block
/// is unpacked once for several tokens and each activation block loaded once for several rows. Q8_0, whose values are
/// one load, takes four rows by two tokens, which shares each activation load four ways; the formats that unpack
/// nibbles take two rows by four tokens, which shares the unpacking four ways (<see cref="IBlock32.TileRows"/>). Every (row, token) keeps
/// the scalar twin's steps, so the bits are those of <see cref="Dot{T}"/>.
/// </remarks>
internal static partial class Block32
{
    /// <summary>Tokens a <see cref="DotTile{T}"/> of format <typeparamref name="T"/> covers: 8 / <see cref="IBlock32.TileRows"/>.</summary>
    public static int TileTokens<T>() where T : IBlock32 => 8 / T.TileRows;

    /// <summary>
    /// Rows r &lt; <see cref="IBlock32.TileRows"/> (<paramref name="rowBytes"/> apart) against tokens t &lt; <see cref="TileTokens{T}"/>
    /// (<paramref name="aStride"/> apart): y[t · <paramref name="yStride"/> + r] is exactly <see cref="Dot{T}"/> of row r with token t.
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
        // The 256-bit tiles serve the 512-bit path too: the bits are the same, and 512-bit pairs of blocks would need
        // twice the accumulators.
        DotTile256<T>(ref w, rowBytes, ref a, aStride, blocks, y, yStride, AvxVnni.IsSupported);
    }

    /// <summary><see cref="DotTile{T}"/> with the integer products chosen, so tests hold both to the scalar twin where the CPU has both.</summary>
    internal static unsafe void DotTile256<T>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni) where T : IBlock32
    {
        if (vnni && !AvxVnni.IsSupported) throw new PlatformNotSupportedException("AVX-VNNI is not supported on this CPU");
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        if (T.TileRows == 4 && T.HasMin) throw new NotSupportedException("the four-row tile takes signed formats only");
        bool four = T.TileRows == 4;
        if (vnni)
        {
            if (four) Tile4x2<T, VnniProducts>(ref w, rowBytes, ref a, aStride, blocks, y, yStride);
            else Tile2x4<T, VnniProducts>(ref w, rowBytes, ref a, aStride, blocks, y, yStride);
        }
        else if (four) Tile4x2<T, MaddProducts>(ref w, rowBytes, ref a, aStride, blocks, y, yStride);
        else Tile2x4<T, MaddProducts>(ref w, rowBytes, ref a, aStride, blocks, y, yStride);
    }

    /// <summary>Four rows by two tokens, for signed formats: both tokens' activations stay in registers while the rows pass.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static unsafe void Tile4x2<T, TP>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where T : IBlock32 where TP : IByteProducts
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte w0 = ref Unsafe.Add(ref w, b * T.BlockBytes);
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            var x0 = Activations(ref a0);
            var x1 = Activations(ref a1);
            var da0 = Vector256.Create(QuantMath.Single(ref a0));
            var da1 = Vector256.Create(QuantMath.Single(ref a1));
            Row(ref w0, x0, x1, da0, da1, ref c00, ref c01);
            Row(ref Unsafe.Add(ref w0, rowBytes), x0, x1, da0, da1, ref c10, ref c11);
            Row(ref Unsafe.Add(ref w0, 2 * rowBytes), x0, x1, da0, da1, ref c20, ref c21);
            Row(ref Unsafe.Add(ref w0, 3 * rowBytes), x0, x1, da0, da1, ref c30, ref c31);
        }
        y[0] = QuantMath.Sum8(c00); y[1] = QuantMath.Sum8(c10); y[2] = QuantMath.Sum8(c20); y[3] = QuantMath.Sum8(c30);
        y += yStride;
        y[0] = QuantMath.Sum8(c01); y[1] = QuantMath.Sum8(c11); y[2] = QuantMath.Sum8(c21); y[3] = QuantMath.Sum8(c31);

        // One row's block against both tokens, at scale d_w · d_a as the twin.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Row(ref byte wb, Vector256<sbyte> x0, Vector256<sbyte> x1, Vector256<float> da0, Vector256<float> da1,
            ref Vector256<float> c0, ref Vector256<float> c1)
        {
            var v = T.Values256(ref wb).AsSByte();
            var u = Avx2.Abs(v);
            var d = Vector256.Create(QuantMath.Half(ref wb));
            c0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(TP.Sum4(u, Avx2.Sign(x0, v))), d * da0, c0);
            c1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(TP.Sum4(u, Avx2.Sign(x1, v))), d * da1, c1);
        }
    }

    /// <summary>Two rows by four tokens: both rows' unpacked values stay in registers while the tokens pass.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    private static unsafe void Tile2x4<T, TP>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where T : IBlock32 where TP : IByteProducts
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        // Formats with a minimum: lane t holds token t's Σ min · s_a, each lane the scalar twin's fma chain.
        Vector128<float> m0 = default, m1 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte w0 = ref Unsafe.Add(ref w, b * T.BlockBytes);
            ref byte w1 = ref Unsafe.Add(ref w0, rowBytes);
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            ref byte a2 = ref Unsafe.Add(ref a1, aStride);
            ref byte a3 = ref Unsafe.Add(ref a2, aStride);
            var v0 = T.Values256(ref w0);
            var v1 = T.Values256(ref w1);
            // Signed formats meet each token as |w| and the token's signs flipped where w < 0 (see the class remarks).
            var u0 = T.HasMin ? v0 : Avx2.Abs(v0.AsSByte());
            var u1 = T.HasMin ? v1 : Avx2.Abs(v1.AsSByte());
            var d0 = Vector256.Create(QuantMath.Half(ref w0));
            var d1 = Vector256.Create(QuantMath.Half(ref w1));
            Token(u0, v0, d0, ref c00, u1, v1, d1, ref c10, ref a0);
            Token(u0, v0, d0, ref c01, u1, v1, d1, ref c11, ref a1);
            Token(u0, v0, d0, ref c02, u1, v1, d1, ref c12, ref a2);
            Token(u0, v0, d0, ref c03, u1, v1, d1, ref c13, ref a3);
            if (T.HasMin)
            {
                var s = Vector128.Create(QuantMath.Single(ref Unsafe.Add(ref a0, 4)), QuantMath.Single(ref Unsafe.Add(ref a1, 4)),
                    QuantMath.Single(ref Unsafe.Add(ref a2, 4)), QuantMath.Single(ref Unsafe.Add(ref a3, 4)));
                m0 = Vector128.FusedMultiplyAdd(Vector128.Create(QuantMath.Half(ref Unsafe.Add(ref w0, 2))), s, m0);
                m1 = Vector128.FusedMultiplyAdd(Vector128.Create(QuantMath.Half(ref Unsafe.Add(ref w1, 2))), s, m1);
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
