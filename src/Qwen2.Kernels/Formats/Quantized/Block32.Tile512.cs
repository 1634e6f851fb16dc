using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The 512-bit prefill tile of the signed formats (Q8_0, Q4_0, Q5_0) for AVX-512 CPUs without AVX-VNNI: four rows by
/// four tokens, each 512-bit accumulator holding two tokens' eight lanes side by side, so every vector operation does two
/// (row, token) pairs' work while each half keeps the 256-bit tiles' (and the scalar twin's) lanes and steps. A block's
/// |w| and sign mask are broadcast to both halves from the prepared row (<see cref="PrepareWide{T}"/>); AVX-512 has no
/// vpsignb, so x takes w's sign as (x ^ m) − m. Per (row, token pair, block): that sign step, vpmaddubsw, vpmaddwd,
/// the conversion, the scale d_w · d_a and the fma: seven 512-bit operations for what the 256-bit tile does in ten.
/// With AVX-VNNI the 256-bit vpdpbusd tile needs three per (row, token, block) and stays the faster one.
/// </remarks>
internal static partial class Block32
{
    /// <summary>Rows and tokens of <see cref="WideTile{T}"/>.</summary>
    public const int WideRows = 4, WideTokens = 4;

    /// <summary>
    /// Unpacks <see cref="WideRows"/> rows of a signed format for <see cref="WideTile{T}"/>: each block's |w| and the
    /// mask of its negative values, and the scales as <see cref="Prepare{T}"/> lays them out (<see cref="PreparedBytes"/>
    /// of <see cref="WideRows"/> rows). Callers have checked <see cref="Avx2.IsSupported"/>.
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
        nint row = (nint)blocks * PreparedValueBytes;
        byte* p0 = prepared, p1 = p0 + row, p2 = p1 + row, p3 = p2 + row;
        float* scales = (float*)(p0 + 4 * row);
        // c_rp: row r with tokens 2p (lower half) and 2p + 1 (upper half).
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int b = 0; b < blocks; b++)
        {
            ref byte a0 = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            ref byte a1 = ref Unsafe.Add(ref a0, aStride);
            ref byte a2 = ref Unsafe.Add(ref a1, aStride);
            ref byte a3 = ref Unsafe.Add(ref a2, aStride);
            var x0 = Vector512.Create(Activations(ref a0), Activations(ref a1));
            var x1 = Vector512.Create(Activations(ref a2), Activations(ref a3));
            var d0 = Vector512.Create(Vector256.Create(QuantMath.Single(ref a0)), Vector256.Create(QuantMath.Single(ref a1)));
            var d1 = Vector512.Create(Vector256.Create(QuantMath.Single(ref a2)), Vector256.Create(QuantMath.Single(ref a3)));
            nint at = (nint)b * PreparedValueBytes;
            float* s = scales + 4 * (nint)b;
            Row(p0 + at, s, x0, x1, d0, d1, ref c00, ref c01);
            Row(p1 + at, s + 1, x0, x1, d0, d1, ref c10, ref c11);
            Row(p2 + at, s + 2, x0, x1, d0, d1, ref c20, ref c21);
            Row(p3 + at, s + 3, x0, x1, d0, d1, ref c30, ref c31);
        }
        Store(y, c00, c10, c20, c30, lower: true);
        Store(y + yStride, c00, c10, c20, c30, lower: false);
        Store(y + 2 * yStride, c01, c11, c21, c31, lower: true);
        Store(y + 3 * yStride, c01, c11, c21, c31, lower: false);

        // One row's block against both token pairs: d_w · d_a per half, as the twin's d.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Row(byte* block, float* dw, Vector512<sbyte> x0, Vector512<sbyte> x1, Vector512<float> d0, Vector512<float> d1,
            ref Vector512<float> c0, ref Vector512<float> c1)
        {
            // vbroadcasti32x8: .NET 10's vbroadcasti64x4 (Avx512F, long*) scales an 8-bit displacement as if it read
            // 16 bytes, so block + 32 would read block + 64.
            var u = Avx512DQ.BroadcastVector256ToVector512((int*)block).AsByte();
            var m = Avx512DQ.BroadcastVector256ToVector512((int*)(block + 32)).AsSByte();
            var scale = Vector512.Create(*dw);
            c0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Sum4(u, (x0 ^ m) - m)), d0 * scale, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Sum4(u, (x1 ^ m) - m)), d1 * scale, c1);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<int> Sum4(Vector512<byte> u, Vector512<sbyte> x) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, x), Vector512.Create((short)1));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* y, Vector512<float> c0, Vector512<float> c1, Vector512<float> c2, Vector512<float> c3, bool lower)
        {
            y[0] = QuantMath.Sum8(lower ? c0.GetLower() : c0.GetUpper());
            y[1] = QuantMath.Sum8(lower ? c1.GetLower() : c1.GetUpper());
            y[2] = QuantMath.Sum8(lower ? c2.GetLower() : c2.GetUpper());
            y[3] = QuantMath.Sum8(lower ? c3.GetLower() : c3.GetUpper());
        }
    }
}
