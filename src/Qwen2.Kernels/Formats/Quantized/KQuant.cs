using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// Pieces the vector paths of the K-quant formats (<see cref="Q4KFormat"/>, <see cref="Q5KFormat"/>,
/// <see cref="Q6KFormat"/>) share: scale unpacking, the exact integer reduction of a super-block, the float steps in
/// the formats' defined order, and the dispatch of 1 to 4 tokens to a specialized kernel.
/// </summary>
internal static class KQuant
{
    /// <summary>
    /// The 12 packed scale bytes of a Q4_K or Q5_K super-block (bytes 4-15 of <paramref name="block"/>) as 16 bytes:
    /// the eight 6-bit scales, then the eight 6-bit minimums (what <see cref="QuantMath.ScaleMinK4"/> reads one at a
    /// time), unpacked as four 32-bit words u0, u1, u2 in one vector of the super-block's first 16 bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> ScalesMins(ref byte block)
    {
        // Sub-blocks 0-3 keep the low 6 bits of u0's bytes (scales) and u1's (minimums); sub-blocks 4-7 take a nibble
        // of u2's and the top two bits of u0's (scales) or u1's (minimums).
        if (!Avx2.IsSupported) return ScalesMinsScalar(ref block);
        var v = Vector128.LoadUnsafe(ref block).AsUInt32(); // [d and dmin, u0, u1, u2]
        var nibbles = Avx2.ShiftRightLogicalVariable(Sse2.Shuffle(v, 0b_11_10_11_01), Vector128.Create(0u, 0, 0, 4)); // [u0, u2, u1, u2 >> 4]
        var tops = Sse2.ShiftRightLogical(Sse2.Shuffle(v, 0b_10_10_01_01), 6); // [u0, u0, u1, u1] >> 6
        return ((nibbles & Vector128.Create(0x3F3F3F3Fu, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F))
            | Sse2.ShiftLeftLogical(tops & Vector128.Create(0u, 0x03030303, 0, 0x03030303), 4)).AsByte();
    }

    /// <summary><see cref="ScalesMins"/> where AVX2 is absent.</summary>
    private static Vector128<byte> ScalesMinsScalar(ref byte block)
    {
        const uint Low6 = 0x3F3F3F3F, Low4 = 0x0F0F0F0F, Low2 = 0x03030303;
        uint u0 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref block, 4)), u1 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref block, 8));
        uint u2 = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref block, 12));
        return Vector128.Create(u0 & Low6, (u2 & Low4) | (((u0 >> 6) & Low2) << 4),
            u1 & Low6, ((u2 >> 4) & Low4) | (((u1 >> 6) & Low2) << 4)).AsByte();
    }

    /// <summary>The sum of eight int32 lanes and the sum of four, exactly (integer addition in any order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int A, int B) Sum(Vector256<int> a, Vector128<int> b)
    {
        var h = Ssse3.HorizontalAdd(a.GetLower() + a.GetUpper(), b);
        h = Ssse3.HorizontalAdd(h, h);
        return (h.ToScalar(), h.GetElement(1));
    }

    /// <summary>Q4_K's and Q5_K's minimum term for one token: 4 lanes whose sum is Σ_s m_s · (bsum_2s + bsum_2s+1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Mins(ref byte activationBlock, Vector128<short> mins) => Sse2.MultiplyAddAdjacent(Pairs(ref activationBlock), mins);

    /// <summary>The activation block's group sums added in pairs: lane s is bsum_2s + bsum_2s+1 (at most 2 · 16 · 128, exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<short> Pairs(ref byte activationBlock) => Vector128.LoadUnsafe(ref activationBlock, QuantizedActivations.Q8KPairs).AsInt16();

    /// <summary><see cref="Pairs"/> in both halves, as the activation block stores them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> PairsTwice(ref byte activationBlock) => Vector256.LoadUnsafe(ref activationBlock, QuantizedActivations.Q8KPairs).AsInt16();

    /// <summary>
    /// One super-block of Q4_K or Q5_K added to <paramref name="acc"/> in the defined order: fma(d·d_a, sumi), then
    /// fma(−(dmin·d_a), summ). The expressions are the scalar twin's, so the bits are too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref float acc, float d, float dmin, ref byte activationBlock, (int Sumi, int Summ) sums)
    {
        float da = QuantMath.Single(ref activationBlock);
        acc = MathF.FusedMultiplyAdd(d * da, sums.Sumi, acc);
        acc = MathF.FusedMultiplyAdd(-(dmin * da), sums.Summ, acc);
    }

    /// <summary>The 256-bit shuffle control that broadcasts int16 lane 0 of each 128-bit half (step it by 2 per lane).</summary>
    public static Vector256<byte> Broadcast16 => Vector256.Create((ushort)0x0100).AsByte();

    /// <summary>
    /// Σ value · activation · scale over 64 elements (pairs, then times the int16 scales) in 16 int32 lanes. Without
    /// AVX-512BW (never so in production, where Vector512 runs only when accelerated) the same lane-wise operations run
    /// on the two 256-bit halves, so tests check the 512-bit kernels' layouts on AVX2 CPUs too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Product512(Vector512<byte> values, Vector512<short> scales, ref byte a)
    {
        var s = Vector512.LoadUnsafe(ref a).AsSByte();
        if (Avx512BW.IsSupported) return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(values, s), scales);
        return Vector512.Create(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(values.GetLower(), s.GetLower()), scales.GetLower()),
            Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(values.GetUpper(), s.GetUpper()), scales.GetUpper()));
    }

    /// <summary>Int16 lane i of the result is lane index[i] of <paramref name="v"/> (vpermw; portable where AVX-512BW is absent, as in <see cref="Product512"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> Permute(Vector512<short> v, Vector512<short> index) =>
        Avx512BW.IsSupported ? Avx512BW.PermuteVar32x16(v, index) : Vector512.Shuffle(v, index);

    /// <summary>
    /// Sums of four adjacent unsigned × signed byte products in int32 lanes: vpdpbusd, or without AVX-VNNI the same
    /// exact sums from pairs (at most 2 · 63 · 128, so vpmaddubsw cannot saturate) times 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Quads(Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.IsSupported
        ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s)
        : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));

    /// <summary>The two halves of a 512-bit sum added (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Fold(Vector512<int> a) => a.GetLower() + a.GetUpper();

    /// <summary>sums + the packed quads times their scales in int16 pairs: vpdpwssd where AVX-VNNI exists (the same wrapping int32 sum), else vpmaddwd and an add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> AddScaled(Vector256<int> sums, Vector256<short> packed, Vector256<short> scales) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(sums, packed, scales) : sums + Avx2.MultiplyAddAdjacent(packed, scales);

    /// <summary>The sum of eight int32 lanes, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Sum(Vector256<int> a)
    {
        var h = a.GetLower() + a.GetUpper();
        h += Sse2.Shuffle(h, 0b_01_00_11_10);
        return (h + Sse2.Shuffle(h, 0b_10_11_00_01)).ToScalar();
    }

    /// <summary>
    /// The lane sums of four rows' vectors, row k in lane k (exact): three horizontal adds put each row's four partial
    /// sums of each half side by side, and the halves are added.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Sum4Rows(Vector256<int> s0, Vector256<int> s1, Vector256<int> s2, Vector256<int> s3)
    {
        var h = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s0, s1), Avx2.HorizontalAdd(s2, s3));
        return h.GetLower() + h.GetUpper();
    }

    /// <summary>The binary16 at byte <paramref name="offset"/> of four blocks <paramref name="stride"/> apart as float32, block k's in lane k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Halves4(ref byte block, nint offset, nint stride)
    {
        ref byte p = ref Unsafe.Add(ref block, offset);
        return Vector128.Create(QuantMath.Half(ref p), QuantMath.Half(ref Unsafe.Add(ref p, stride)),
            QuantMath.Half(ref Unsafe.Add(ref p, 2 * stride)), QuantMath.Half(ref Unsafe.Add(ref p, 3 * stride)));
    }

    /// <summary>Adds <paramref name="p"/>'s products with each token's activations (token t's at <paramref name="a"/> + t · <paramref name="aStride"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Accumulate<TN, TP>(ref TokenSums sums, in TP p, ref byte a, nint aStride) where TN : struct, ITokens where TP : struct, ITokenProduct
    {
        sums.S0 = p.AddTo(sums.S0, ref a);
        if (TN.Count > 1) sums.S1 = p.AddTo(sums.S1, ref Unsafe.Add(ref a, aStride));
        if (TN.Count > 2) sums.S2 = p.AddTo(sums.S2, ref Unsafe.Add(ref a, 2 * aStride));
        if (TN.Count > 3) sums.S3 = p.AddTo(sums.S3, ref Unsafe.Add(ref a, 3 * aStride));
    }

    /// <summary>
    /// One row of super-blocks against <typeparamref name="TN"/>.Count tokens on kernel <typeparamref name="TB"/>:
    /// dst[t] is the scalar twin's dot product with token t, the float steps in super-block order.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its callees always fit its inlining budget
    public static void Run<TB, TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where TB : ISuperBlockKernel where TN : struct, ITokens
    {
        float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref byte wb = ref Unsafe.Add(ref w, (nint)b * TB.SuperBlockBytes);
            ref byte a0 = ref Unsafe.Add(ref a, (nint)b * QuantizedActivations.Q8KBytes);
            TokenSums sums = default;
            var scales = TB.Sums<TN>(ref wb, ref a0, aStride, ref sums);
            TB.Step(ref acc0, sums.S0, scales, ref wb, ref a0);
            if (TN.Count > 1) TB.Step(ref acc1, sums.S1, scales, ref wb, ref Unsafe.Add(ref a0, aStride));
            if (TN.Count > 2) TB.Step(ref acc2, sums.S2, scales, ref wb, ref Unsafe.Add(ref a0, 2 * aStride));
            if (TN.Count > 3) TB.Step(ref acc3, sums.S3, scales, ref wb, ref Unsafe.Add(ref a0, 3 * aStride));
        }
        dst = acc0;
        if (TN.Count > 1) Unsafe.Add(ref dst, 1) = acc1;
        if (TN.Count > 2) Unsafe.Add(ref dst, 2) = acc2;
        if (TN.Count > 3) Unsafe.Add(ref dst, 3) = acc3;
    }

    /// <summary>One row against one token on kernel <typeparamref name="TB"/>.</summary>
    public static float Dot<TB>(ref byte w, ref byte a, int blocks) where TB : ISuperBlockKernel
    {
        float r = 0;
        Run<TB, OneToken>(ref w, ref a, 0, blocks, ref r);
        return r;
    }

    /// <summary>
    /// <see cref="IQuantFormat.DotTokens"/> for K-quant <typeparamref name="TQ"/>: its 512-bit kernel
    /// <typeparamref name="T512"/> or 256-bit kernel <typeparamref name="T256"/>, or the scalar twin per token.
    /// </summary>
    public static void DotTokens<TQ, T256, T512>(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa)
        where TQ : IQuantFormat where T256 : ISuperBlockKernel where T512 : ISuperBlockKernel
    {
        CheckTokens(tokens, destination);
        ref float d = ref MemoryMarshal.GetReference(destination);
        if (isa == Isa.Vector512) Run<T512>(ref w, ref a, aStride, tokens, blocks, ref d);
        else if (isa == Isa.Vector256) Run<T256>(ref w, ref a, aStride, tokens, blocks, ref d);
        else QuantMath.DotEachToken<TQ>(ref w, ref a, aStride, tokens, blocks, destination, Isa.Scalar);
    }

    /// <summary>
    /// <see cref="IQuantFormat.Dot4Rows"/> for K-quant <typeparamref name="TQ"/>: super-block b of each of the four rows,
    /// then b + 1, each row's float steps those of <see cref="Run{TB, TN}"/>; or the scalar twin per row. The 256-bit
    /// kernel serves AVX-512 CPUs too: with vpdpbusd (AVX-VNNI has no 512-bit form in .NET) and each chunk of
    /// activations loaded once for four rows it outruns the 512-bit kernel's row-at-a-time products (bench/results).
    /// </summary>
    public static void Dot4Rows<TQ, T256>(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa)
        where TQ : IQuantFormat where T256 : ISuperBlockKernel
    {
        if (isa != Isa.Scalar) Run4Rows<T256>(ref w, stride, ref a, blocks, ref dst);
        else
            for (int k = 0; k < 4; k++) Unsafe.Add(ref dst, k) = TQ.Dot(ref Unsafe.Add(ref w, stride * k), ref a, blocks, Isa.Scalar);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its callees always fit its inlining budget
    internal static void Run4Rows<TB>(ref byte w, nint stride, ref byte a, int blocks, ref float dst) where TB : ISuperBlockKernel
    {
        var acc = Vector128<float>.Zero; // row k's accumulator in lane k
        for (int b = 0; b < blocks; b++)
        {
            ref byte w0 = ref Unsafe.Add(ref w, (nint)b * TB.SuperBlockBytes);
            ref byte ab = ref Unsafe.Add(ref a, (nint)b * QuantizedActivations.Q8KBytes);
            TokenSums sums = default;
            Vector256<short> s0, s1, s2, s3;
            if (TB.FourRows) TB.Sums4Rows(ref w0, stride, ref ab, ref sums, out s0, out s1, out s2, out s3);
            else
            {
                s0 = Row(ref w0, ref ab, out sums.S0);
                s1 = Row(ref Unsafe.Add(ref w0, stride), ref ab, out sums.S1);
                s2 = Row(ref Unsafe.Add(ref w0, 2 * stride), ref ab, out sums.S2);
                s3 = Row(ref Unsafe.Add(ref w0, 3 * stride), ref ab, out sums.S3);
            }
            acc = TB.Step4(acc, sums, s0, s1, s2, s3, ref w0, stride, ref ab);
        }
        acc.StoreUnsafe(ref dst);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<short> Row(ref byte wb, ref byte ab, out Vector256<int> rowSums)
        {
            TokenSums one = default;
            var scales = TB.Sums<OneToken>(ref wb, ref ab, 0, ref one);
            rowSums = one.S0;
            return scales;
        }
    }

    /// <summary><see cref="ISuperBlockKernel.Step4"/> as four <see cref="ISuperBlockKernel.Step"/>s, for kernels that four-row decoding does not run.</summary>
    public static Vector128<float> StepEach<TB>(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
        Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock) where TB : ISuperBlockKernel
    {
        float a0 = acc.GetElement(0), a1 = acc.GetElement(1), a2 = acc.GetElement(2), a3 = acc.GetElement(3);
        TB.Step(ref a0, sums.S0, scales0, ref block, ref activationBlock);
        TB.Step(ref a1, sums.S1, scales1, ref Unsafe.Add(ref block, stride), ref activationBlock);
        TB.Step(ref a2, sums.S2, scales2, ref Unsafe.Add(ref block, 2 * stride), ref activationBlock);
        TB.Step(ref a3, sums.S3, scales3, ref Unsafe.Add(ref block, 3 * stride), ref activationBlock);
        return Vector128.Create(a0, a1, a2, a3);
    }

    /// <summary><see cref="Run{TB, TN}"/> for 1 to 4 <paramref name="tokens"/>, known only at run time.</summary>
    public static void Run<TB>(ref byte w, ref byte a, nint aStride, int tokens, int blocks, ref float d) where TB : ISuperBlockKernel
    {
        switch (tokens)
        {
            case 1: Run<TB, OneToken>(ref w, ref a, aStride, blocks, ref d); break;
            case 2: Run<TB, Tokens2>(ref w, ref a, aStride, blocks, ref d); break;
            case 3: Run<TB, Tokens3>(ref w, ref a, aStride, blocks, ref d); break;
            default: Run<TB, Tokens4>(ref w, ref a, aStride, blocks, ref d); break;
        }
    }

    /// <summary>Checks the arguments of <see cref="IQuantFormat.DotTokens"/> that a specialized kernel relies on.</summary>
    private static void CheckTokens(int tokens, Span<float> destination)
    {
        if ((uint)(tokens - 1) > 3) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "DotTokens takes 1 to 4 tokens");
        if (destination.Length < tokens) throw new ArgumentException($"destination holds {destination.Length} results, {tokens} needed", nameof(destination));
    }
}
