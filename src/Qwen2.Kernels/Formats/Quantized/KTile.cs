using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// The K-quants' prefill tile: two rows by four tokens, eight int32 accumulators held in registers while a super-block
/// passes, over a row pair unpacked once per group of tokens (<see cref="Prepare{TK}"/>), and each activation vector
/// loaded once for both rows. Per super-block the eight sums are reduced into one vector (lane 4r + t) and the format's float steps
/// run on all eight lanes at once, each lane the scalar twin's expressions in its order, so the bits are those of
/// <see cref="IQuantFormat.Dot"/>.
/// </summary>
/// <remarks>
/// The products are pair sums (vpmaddubsw, then vpmaddwd with the vector's scales, prepared in memory with the
/// values), so the work per vector needs the 8 accumulators, 2 rows' values, the activations and one temporary, the
/// scales read as memory operands. The eight vectors are written out so their offsets are constants.
/// Pair sums are exact wherever AVX-VNNI exists too, so the tile does not switch to quads there.
/// </remarks>
internal static unsafe partial class KTile
{
    /// <summary>Rows a tile covers.</summary>
    public const int Rows = 2;

    /// <summary>Tokens a tile covers.</summary>
    public const int Tokens = 4;

    /// <summary>
    /// Rows r &lt; <see cref="Rows"/> (<paramref name="rowBytes"/> apart) against tokens t &lt; <see cref="Tokens"/>
    /// (<paramref name="aStride"/> apart): y[t · <paramref name="yStride"/> + r] is exactly <typeparamref name="TQ"/>'s
    /// <see cref="IQuantFormat.Dot"/> of row r with token t. The tile runs on the 256-bit and 512-bit paths (its
    /// kernel is 256-bit); the scalar path dots each (row, token) on its own.
    /// </summary>
    public static void DotTile<TQ, TK>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride, Isa isa)
        where TQ : IQuantFormat where TK : IKTileKernel
    {
        if (isa != Isa.Scalar && Avx2.IsSupported)
        {
            Run<TK, NativeProducts>(ref w, rowBytes, ref a, aStride, blocks, y, yStride);
            return;
        }
        for (int t = 0; t < Tokens; t++)
            for (int r = 0; r < Rows; r++)
                y[t * yStride + r] = TQ.Dot(ref Unsafe.Add(ref w, rowBytes * r), ref Unsafe.Add(ref a, aStride * t), blocks, isa);
    }

    /// <summary>Bytes <see cref="Prepare{TK}"/> writes for a row pair of <paramref name="blocks"/> super-blocks.</summary>
    public static nint PreparedBytes(int blocks) => (nint)blocks * PreparedSuperBlock;

    // A row pair's prepared super-block: the eight value vectors of both rows interleaved (k of row 0, k of row 1, ...),
    // then their eight scale vectors the same way, so the 512-bit tile loads a vector k of both rows as one; then each
    // row's Step vector (what IKTileKernel.Scales returns); then the float steps' d and dmin of both rows, as
    // KTile.PerRow lays them out, so a step reads two vectors instead of converting four binary16 values.
    private const int PreparedSuperBlock = 36 * 32;

    /// <summary>
    /// Unpacks the values and scales of a row pair (<paramref name="rowBytes"/> apart) of <paramref name="blocks"/>
    /// super-blocks to <paramref name="destination"/> (<see cref="PreparedBytes"/>), so a prefill unpacks them once per
    /// group of tokens instead of once per tile. Callers have checked <see cref="Avx2.IsSupported"/>.
    /// </summary>
    [SkipLocalsInit]
    public static void Prepare<TK>(ref byte w, nint rowBytes, int blocks, byte* destination) where TK : IKTileKernel
    {
        Vector256<byte>* unpacked = stackalloc Vector256<byte>[8];
        Vector256<short>* scales = stackalloc Vector256<short>[8];
        for (int b = 0; b < blocks; b++)
        {
            var p = (Vector256<byte>*)(destination + (nint)b * PreparedSuperBlock);
            for (int r = 0; r < Rows; r++)
            {
                ref byte block = ref Unsafe.Add(ref w, (nint)b * TK.SuperBlockBytes + r * rowBytes);
                p[32 + r] = TK.Scales(ref block, scales).AsByte();
                float* d = (float*)(p + 34) + 4 * r, dmin = d + 8;
                (float rowD, float rowDMin) = TK.RowScales(ref block);
                Vector128.Create(rowD).Store(d);
                Vector128.Create(rowDMin).Store(dmin);
                TK.Unpack(ref block, unpacked);
                for (int k = 0; k < 8; k++)
                {
                    p[2 * k + r] = TK.Values(ref block, unpacked, k);
                    p[16 + 2 * k + r] = scales[k].AsByte();
                }
            }
        }
    }

    /// <summary>
    /// The 256-bit tile (see the class remarks) on raw rows: <see cref="Prepare{TK}"/>, then
    /// <see cref="RunPrepared{TK, TM}"/> with its products as <typeparamref name="TM"/> says (tests force either form).
    /// </summary>
    internal static void Run<TK, TM>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where TK : IKTileKernel where TM : struct, IProductMode
    {
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        var prepared = new byte[PreparedBytes(blocks)];
        fixed (byte* p = prepared)
        {
            Prepare<TK>(ref w, rowBytes, blocks, p);
            RunPrepared<TK, TM>(p, ref a, aStride, blocks, y, yStride);
        }
    }

    /// <summary>
    /// The 256-bit tile over the row pair that <see cref="Prepare{TK}"/> wrote to <paramref name="prepared"/>, scales
    /// included, so the raw rows are not read again. With quads
    /// (<typeparamref name="TM"/>) the scale products accumulate by vpdpwssd where AVX-VNNI exists: one vector operation
    /// fewer per (row, token, 32 values) than vpmaddwd and an add, the same wrapping int32 sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    public static void RunPrepared<TK, TM>(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where TK : IKTileKernel where TM : struct, IProductMode
    {
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException("AVX2 is not supported on this CPU");
        Vector256<float> acc = default;
        nint a2 = 2 * aStride, a3 = 3 * aStride;
        for (int b = 0; b < blocks; b++)
        {
            ref byte ab = ref Unsafe.Add(ref a, (nint)b * QuantizedActivations.Q8KBytes);
            var values = (Vector256<byte>*)(prepared + (nint)b * PreparedSuperBlock);
            var scales = (Vector256<short>*)(values + 16);
            var o0 = values[32].AsInt16();
            var o1 = values[33].AsInt16();
            Vector256<int> s00 = default, s01 = default, s02 = default, s03 = default;
            Vector256<int> s10 = default, s11 = default, s12 = default, s13 = default;
            if (TK.HasOffset)
            {
                Offset(ref ab, o0, o1, ref s00, ref s10);
                Offset(ref Unsafe.Add(ref ab, aStride), o0, o1, ref s01, ref s11);
                Offset(ref Unsafe.Add(ref ab, a2), o0, o1, ref s02, ref s12);
                Offset(ref Unsafe.Add(ref ab, a3), o0, o1, ref s03, ref s13);
            }
            // Written out, so each vector's offsets are constants.
            ref byte av = ref Unsafe.Add(ref ab, QuantizedActivations.Q8KValues);
            Vector<TM>(0, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(1, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(2, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(3, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(4, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(5, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(6, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            Vector<TM>(7, values, scales, ref av, aStride, a2, a3, ref s00, ref s01, ref s02, ref s03, ref s10, ref s11, ref s12, ref s13);
            acc = TK.Step(acc, Reduce(s00, s01, s02, s03, s10, s11, s12, s13), o0, o1, ((Vector256<float>*)values)[34], ((Vector256<float>*)values)[35], ref ab, aStride);
        }
        for (int t = 0; t < Tokens; t++)
        {
            y[t * yStride] = acc.GetElement(t);
            y[t * yStride + 1] = acc.GetElement(4 + t);
        }
    }

    /// <summary>Vector k of both rows' prepared super-blocks against the four tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Vector<TM>(int k, Vector256<byte>* values, Vector256<short>* scales, ref byte av,
        nint aStride, nint a2, nint a3, ref Vector256<int> s00, ref Vector256<int> s01, ref Vector256<int> s02, ref Vector256<int> s03,
        ref Vector256<int> s10, ref Vector256<int> s11, ref Vector256<int> s12, ref Vector256<int> s13) where TM : struct, IProductMode
    {
        var v0 = values[2 * k];
        var v1 = values[2 * k + 1];
        Vector256<short>* c0 = scales + 2 * k, c1 = c0 + 1;
        ref byte ak = ref Unsafe.Add(ref av, 32 * k);
        Token<TM>(v0, v1, c0, c1, ref ak, ref s00, ref s10);
        Token<TM>(v0, v1, c0, c1, ref Unsafe.Add(ref ak, aStride), ref s01, ref s11);
        Token<TM>(v0, v1, c0, c1, ref Unsafe.Add(ref ak, a2), ref s02, ref s12);
        Token<TM>(v0, v1, c0, c1, ref Unsafe.Add(ref ak, a3), ref s03, ref s13);
    }

    /// <summary>One token's activation vector against both rows' values: pair sums, times each row's scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Token<TM>(Vector256<byte> v0, Vector256<byte> v1, Vector256<short>* c0, Vector256<short>* c1, ref byte ak,
        ref Vector256<int> s0, ref Vector256<int> s1) where TM : struct, IProductMode
    {
        var x = Vector256.LoadUnsafe(ref ak).AsSByte();
        if (TM.Quads && AvxVnni.IsSupported)
        {
            s0 = AvxVnni.MultiplyWideningAndAdd(s0, Avx2.MultiplyAddAdjacent(v0, x), Avx.LoadVector256((short*)c0));
            s1 = AvxVnni.MultiplyWideningAndAdd(s1, Avx2.MultiplyAddAdjacent(v1, x), Avx.LoadVector256((short*)c1));
            return;
        }
        s0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(v0, x), Avx.LoadVector256((short*)c0));
        s1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(v1, x), Avx.LoadVector256((short*)c1));
    }

    /// <summary>The offset terms of one token with each row: its 16 group sums times the rows' offset lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Offset(ref byte activationBlock, Vector256<short> o0, Vector256<short> o1, ref Vector256<int> s0, ref Vector256<int> s1)
    {
        var bsums = Vector256.LoadUnsafe(ref activationBlock, QuantizedActivations.Q8KSums).AsInt16();
        s0 = Avx2.MultiplyAddAdjacent(bsums, o0);
        s1 = Avx2.MultiplyAddAdjacent(bsums, o1);
    }

    /// <summary>Lane 4r + t: the sum of the eight lanes of s_rt (exact integer additions).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Reduce(Vector256<int> s00, Vector256<int> s01, Vector256<int> s02, Vector256<int> s03,
        Vector256<int> s10, Vector256<int> s11, Vector256<int> s12, Vector256<int> s13)
    {
        // Each 128-bit half of r0 and r1 holds that half's partial sums of tokens 0-3; the halves are then added.
        var r0 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s00, s01), Avx2.HorizontalAdd(s02, s03));
        var r1 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s10, s11), Avx2.HorizontalAdd(s12, s13));
        return Avx2.Permute2x128(r0, r1, 0x20) + Avx2.Permute2x128(r0, r1, 0x31);
    }

    /// <summary>
    /// Lanes 0-3 and 4-7 of the four 128-bit sums q_t (lanes 0-3 row 0, 4-7 row 1) added within each half: lane 4r + t
    /// is the sum of row r's lanes of q_t.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Reduce(Vector256<int> q0, Vector256<int> q1, Vector256<int> q2, Vector256<int> q3) =>
        Avx2.HorizontalAdd(Avx2.HorizontalAdd(q0, q1), Avx2.HorizontalAdd(q2, q3));

    /// <summary>Lanes 4r + t = d_r: each row's value in its half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> PerRow(float d0, float d1) => Vector256.Create(Vector128.Create(d0), Vector128.Create(d1));

    /// <summary>Lanes 4r + t = d_a of token t: the activation blocks' scales, in both halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> PerToken(ref byte a, nint aStride)
    {
        var d = Vector128.Create(QuantMath.Single(ref a), QuantMath.Single(ref Unsafe.Add(ref a, aStride)),
            QuantMath.Single(ref Unsafe.Add(ref a, 2 * aStride)), QuantMath.Single(ref Unsafe.Add(ref a, 3 * aStride)));
        return Vector256.Create(d, d);
    }
}
