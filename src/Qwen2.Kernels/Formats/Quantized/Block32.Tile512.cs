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
/// Per (row pair, token, block): that sign step, vpmaddubsw and vpmaddwd; then two tokens' sums are folded to the
/// twin's four lanes into one vector (two vshufi32x4 and an add) for one conversion, scale and fma: seven 512-bit
/// operations per (row pair, token, block) for what the 256-bit tile does in twelve.
/// With AVX-VNNI the 256-bit vpdpbusd tile needs two and a half per (row, token, block) and stays the faster one.
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
            // c_qp: rows 2q and 2q + 1 with tokens 2p and 2p + 1, four lanes each: (2q, 2p), (2q + 1, 2p), (2q, 2p + 1), (2q + 1, 2p + 1).
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
            for (int b = 0; b < blocks; b++)
            {
                nint at = (nint)b * 2 * PreparedValueBytes;
                var u0 = Vector512.Load(q0 + at);
                var m0 = Vector512.Load((sbyte*)(q0 + at + 64));
                var u1 = Vector512.Load(q1 + at);
                var m1 = Vector512.Load((sbyte*)(q1 + at + 64));
                float* s = scales + 4 * (nint)b;
                var dw0 = Vector256.Create(Vector128.Create(s[0]), Vector128.Create(s[1]));
                var dw1 = Vector256.Create(Vector128.Create(s[2]), Vector128.Create(s[3]));
                byte* a0 = pa + b * QuantizedActivations.Q8Bytes;
                Tokens(a0, a0 + aStride, u0, m0, dw0, u1, m1, dw1, ref c00, ref c10);
                Tokens(a0 + 2 * aStride, a0 + 3 * aStride, u0, m0, dw0, u1, m1, dw1, ref c01, ref c11);
            }
            Store(y, yStride, c00, 0);
            Store(y, yStride, c10, 2);
            Store(y + 2 * yStride, yStride, c01, 0);
            Store(y + 2 * yStride, yStride, c11, 2);
        }

        // Two tokens' blocks against both row pairs, folded into one vector per pair at the scales d_w · d_a, as the twin's d.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Tokens(byte* at, byte* au, Vector512<byte> u0, Vector512<sbyte> m0, Vector256<float> dw0,
            Vector512<byte> u1, Vector512<sbyte> m1, Vector256<float> dw1, ref Vector512<float> c0, ref Vector512<float> c1)
        {
            var x = Values(at);
            var z = Values(au);
            var da = Vector512.Create(Vector256.Create(*(float*)at), Vector256.Create(*(float*)au));
            c0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Fold(Sum4(u0, (x ^ m0) - m0), Sum4(u0, (z ^ m0) - m0))), Vector512.Create(dw0, dw0) * da, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Fold(Sum4(u1, (x ^ m1) - m1), Sum4(u1, (z ^ m1) - m1))), Vector512.Create(dw1, dw1) * da, c1);
        }

        // A token's block in both halves. vbroadcasti32x8: .NET 10's vbroadcasti64x4 (Avx512F, long*) scales an 8-bit
        // displacement as if it read 16 bytes, so an address 32 past a register would read 64 past it.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<sbyte> Values(byte* ab) => Avx512DQ.BroadcastVector256ToVector512((int*)(ab + QuantizedActivations.Q8Values)).AsSByte();

        // Lanes [row 0 | row 1] of tokens t and u, eight each, to row 0 with t, row 1 with t, row 0 with u, row 1 with u, four each.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<int> Fold(Vector512<int> t, Vector512<int> u) => Avx512F.Shuffle4x128(t, u, 0x88) + Avx512F.Shuffle4x128(t, u, 0xDD);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<int> Sum4(Vector512<byte> u, Vector512<sbyte> x) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, x), Vector512.Create((short)1));

        // c_qp's results: rows r and r + 1 (r = 2q) of the pair's first token at y, of its second at y + yStride.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* y, nint yStride, Vector512<float> c, int r)
        {
            y[r] = QuantMath.Sum4(c.GetLower().GetLower());
            y[r + 1] = QuantMath.Sum4(c.GetLower().GetUpper());
            y[yStride + r] = QuantMath.Sum4(c.GetUpper().GetLower());
            y[yStride + r + 1] = QuantMath.Sum4(c.GetUpper().GetUpper());
        }
    }
}
