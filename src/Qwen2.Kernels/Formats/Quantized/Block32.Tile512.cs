using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The 512-bit prefill tile of the signed formats (Q8_0, Q4_0, Q5_0) for AVX-512 CPUs without AVX-VNNI: four rows by
/// four tokens, each 512-bit accumulator holding two rows' eight lanes side by side, so every vector operation does two
/// (row, token) pairs' work while each half keeps the 256-bit tiles' (and the scalar twin's) lanes and steps. A row
/// pair's blocks are prepared side by side (<see cref="PrepareWide{T}"/>: both |w|, then both sign masks), and each
/// token's block is broadcast to both halves by the load; AVX-512 has no vpsignb, so x takes w's sign as (x ^ m) − m.
/// Per (row pair, token, block): that sign step, vpmaddubsw, vpmaddwd, the conversion, the scale d_w · d_a and the fma,
/// seven 512-bit operations for what the 256-bit tile does in ten.
/// With AVX-VNNI the 256-bit vpdpbusd tile needs three per (row, token, block) and stays the faster one.
/// </remarks>
internal static partial class Block32
{
    /// <summary>Rows and tokens of <see cref="WideTile{T}"/>.</summary>
    public const int WideRows = 4, WideTokens = 4;

    /// <summary>
    /// Unpacks <see cref="WideRows"/> rows of a signed format for <see cref="WideTile{T}"/>: each block's |w| and the
    /// mask of its negative values, a row pair's blocks side by side, and the scales as <see cref="Prepare{T}"/> lays them
    /// out (<see cref="PreparedBytes"/> of <see cref="WideRows"/> rows). Callers have checked <see cref="Avx2.IsSupported"/>.
    /// </summary>
    public static unsafe void PrepareWide<T>(ref byte w, nint rowBytes, int blocks, byte* destination) where T : IBlock32
    {
        if (T.HasMin) throw new NotSupportedException("the 512-bit tile takes signed formats only");
        PrepareRows<T>(ref w, rowBytes, WideRows, blocks, destination, PreparedLayout.SignMask);
    }

    /// <summary>
    /// <see cref="PrepareWide{T}"/>, then <see cref="WideTile{T}"/>, on raw rows (allocates: for tests).
    /// y[t · <paramref name="yStride"/> + r] is exactly <see cref="Dot{T}"/> of row r with token t.
    /// </summary>
    internal static unsafe void DotTile512<T>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride) where T : IBlock32
    {
        if (!Avx512BW.IsSupported || !Avx512DQ.IsSupported) throw new PlatformNotSupportedException("AVX-512 BW and DQ are not supported on this CPU");
        var prepared = new byte[PreparedBytes(WideRows, blocks)];
        fixed (byte* p = prepared)
        {
            PrepareWide<T>(ref w, rowBytes, blocks, p);
            WideTile<T>(p, ref a, aStride, blocks, y, yStride);
        }
    }

    /// <summary>
    /// Rows r &lt; <see cref="WideRows"/> that <see cref="PrepareWide{T}"/> wrote at <paramref name="prepared"/> against tokens
    /// t &lt; <see cref="WideTokens"/> (<paramref name="aStride"/> apart): y[t · <paramref name="yStride"/> + r] is exactly
    /// <see cref="Dot{T}"/> of row r with token t.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    public static unsafe void WideTile<T>(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride) where T : IBlock32
    {
        if (!Avx512BW.IsSupported || !Avx512DQ.IsSupported) throw new PlatformNotSupportedException("AVX-512 BW and DQ are not supported on this CPU");
        fixed (byte* pa = &a) // activations are unmanaged memory in production; pinned for the tests' arrays
        {
            byte* q0 = prepared, q1 = q0 + (nint)blocks * 2 * PreparedValueBytes;
            float* scales = (float*)(prepared + (nint)blocks * 4 * PreparedValueBytes);
            // c_qt: rows 2q (lower half) and 2q + 1 (upper half) with token t.
            Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
            for (int b = 0; b < blocks; b++)
            {
                nint at = (nint)b * 2 * PreparedValueBytes;
                var u0 = Vector512.Load(q0 + at);
                var m0 = Vector512.Load((sbyte*)(q0 + at + 64));
                var u1 = Vector512.Load(q1 + at);
                var m1 = Vector512.Load((sbyte*)(q1 + at + 64));
                float* s = scales + 4 * (nint)b;
                var dw0 = Vector512.Create(Vector256.Create(s[0]), Vector256.Create(s[1]));
                var dw1 = Vector512.Create(Vector256.Create(s[2]), Vector256.Create(s[3]));
                byte* a0 = pa + b * QuantizedActivations.Q8Bytes;
                Token(a0, u0, m0, dw0, u1, m1, dw1, ref c00, ref c10);
                Token(a0 + aStride, u0, m0, dw0, u1, m1, dw1, ref c01, ref c11);
                Token(a0 + 2 * aStride, u0, m0, dw0, u1, m1, dw1, ref c02, ref c12);
                Token(a0 + 3 * aStride, u0, m0, dw0, u1, m1, dw1, ref c03, ref c13);
            }
            Store(y, c00, c10);
            Store(y + yStride, c01, c11);
            Store(y + 2 * yStride, c02, c12);
            Store(y + 3 * yStride, c03, c13);
        }

        // One token's block, broadcast to both halves, against both row pairs: the scales d_w · d_a, as the twin's d.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Token(byte* ab, Vector512<byte> u0, Vector512<sbyte> m0, Vector512<float> dw0,
            Vector512<byte> u1, Vector512<sbyte> m1, Vector512<float> dw1, ref Vector512<float> c0, ref Vector512<float> c1)
        {
            // vbroadcasti32x8: .NET 10's vbroadcasti64x4 (Avx512F, long*) scales an 8-bit displacement as if it read
            // 16 bytes, so an address 32 past a register would read 64 past it.
            var x = Avx512DQ.BroadcastVector256ToVector512((int*)(ab + QuantizedActivations.Q8Values)).AsSByte();
            var da = Vector512.Create(*(float*)ab);
            c0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Sum4(u0, (x ^ m0) - m0)), dw0 * da, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Sum4(u1, (x ^ m1) - m1)), dw1 * da, c1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<int> Sum4(Vector512<byte> u, Vector512<sbyte> x) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, x), Vector512.Create((short)1));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* y, Vector512<float> c0, Vector512<float> c1)
        {
            y[0] = QuantMath.Sum8(c0.GetLower());
            y[1] = QuantMath.Sum8(c0.GetUpper());
            y[2] = QuantMath.Sum8(c1.GetLower());
            y[3] = QuantMath.Sum8(c1.GetUpper());
        }
    }
}
