using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// Dot products of weight rows with a float32 vector. Every output element is summed in one fixed order
/// (one accumulator over full vectors, a horizontal sum, then the scalar tail), whether it is computed alone
/// or in a block of four rows, so a result never depends on blocking, threading or the number of tokens.
/// </summary>
internal static class DotKernels
{
    public static float Dot1<TF>(ref byte w, ref float x, int n, Isa isa) where TF : IRowFormat => isa switch
    {
        Isa.Vector512 => Dot1V512<TF>(ref w, ref x, n),
        Isa.Vector256 => Dot1V256<TF>(ref w, ref x, n),
        _ => Dot1Scalar<TF>(ref w, ref x, n),
    };

    /// <summary>Four rows <paramref name="stride"/> bytes apart; results go to dst[0..3].</summary>
    public static void Dot4<TF>(ref byte w, nint stride, ref float x, int n, ref float dst, Isa isa) where TF : IRowFormat
    {
        switch (isa)
        {
            case Isa.Vector512: Dot4V512<TF>(ref w, stride, ref x, n, ref dst); break;
            case Isa.Vector256: Dot4V256<TF>(ref w, stride, ref x, n, ref dst); break;
            default:
                for (int r = 0; r < 4; r++) Unsafe.Add(ref dst, r) = Dot1Scalar<TF>(ref Unsafe.Add(ref w, stride * r), ref x, n);
                break;
        }
    }

    /// <summary>The scalar twin: the math as written, summed left to right in float32.</summary>
    public static float Dot1Scalar<TF>(ref byte w, ref float x, int n) where TF : IRowFormat
    {
        float s = 0;
        for (nint i = 0; i < n; i++) s += TF.Load1(ref w, i) * Unsafe.Add(ref x, i);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail<TF>(float s, ref byte w, ref float x, nint i, int n) where TF : IRowFormat
    {
        for (; i < n; i++) s += TF.Load1(ref w, i) * Unsafe.Add(ref x, i);
        return s;
    }

    private static float Dot1V512<TF>(ref byte w, ref float x, int n) where TF : IRowFormat
    {
        var a = Vector512<float>.Zero;
        nint i = 0, end = n & ~15;
        for (; i < end; i += 16) a = Vector512.FusedMultiplyAdd(TF.Load512(ref w, i), Vector512.LoadUnsafe(ref x, (nuint)i), a);
        return Tail<TF>(Vector512.Sum(a), ref w, ref x, i, n);
    }

    private static float Dot1V256<TF>(ref byte w, ref float x, int n) where TF : IRowFormat
    {
        var a = Vector256<float>.Zero;
        nint i = 0, end = n & ~7;
        for (; i < end; i += 8) a = Vector256.FusedMultiplyAdd(TF.Load256(ref w, i), Vector256.LoadUnsafe(ref x, (nuint)i), a);
        return Tail<TF>(Vector256.Sum(a), ref w, ref x, i, n);
    }

    private static void Dot4V512<TF>(ref byte w0, nint stride, ref float x, int n, ref float dst) where TF : IRowFormat
    {
        ref byte w1 = ref Unsafe.Add(ref w0, stride);
        ref byte w2 = ref Unsafe.Add(ref w1, stride);
        ref byte w3 = ref Unsafe.Add(ref w2, stride);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        nint i = 0, end = n & ~15;
        for (; i < end; i += 16)
        {
            var xv = Vector512.LoadUnsafe(ref x, (nuint)i);
            a0 = Vector512.FusedMultiplyAdd(TF.Load512(ref w0, i), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(TF.Load512(ref w1, i), xv, a1);
            a2 = Vector512.FusedMultiplyAdd(TF.Load512(ref w2, i), xv, a2);
            a3 = Vector512.FusedMultiplyAdd(TF.Load512(ref w3, i), xv, a3);
        }
        dst = Tail<TF>(Vector512.Sum(a0), ref w0, ref x, i, n);
        Unsafe.Add(ref dst, 1) = Tail<TF>(Vector512.Sum(a1), ref w1, ref x, i, n);
        Unsafe.Add(ref dst, 2) = Tail<TF>(Vector512.Sum(a2), ref w2, ref x, i, n);
        Unsafe.Add(ref dst, 3) = Tail<TF>(Vector512.Sum(a3), ref w3, ref x, i, n);
    }

    private static void Dot4V256<TF>(ref byte w0, nint stride, ref float x, int n, ref float dst) where TF : IRowFormat
    {
        ref byte w1 = ref Unsafe.Add(ref w0, stride);
        ref byte w2 = ref Unsafe.Add(ref w1, stride);
        ref byte w3 = ref Unsafe.Add(ref w2, stride);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        nint i = 0, end = n & ~7;
        for (; i < end; i += 8)
        {
            var xv = Vector256.LoadUnsafe(ref x, (nuint)i);
            a0 = Vector256.FusedMultiplyAdd(TF.Load256(ref w0, i), xv, a0);
            a1 = Vector256.FusedMultiplyAdd(TF.Load256(ref w1, i), xv, a1);
            a2 = Vector256.FusedMultiplyAdd(TF.Load256(ref w2, i), xv, a2);
            a3 = Vector256.FusedMultiplyAdd(TF.Load256(ref w3, i), xv, a3);
        }
        dst = Tail<TF>(Vector256.Sum(a0), ref w0, ref x, i, n);
        Unsafe.Add(ref dst, 1) = Tail<TF>(Vector256.Sum(a1), ref w1, ref x, i, n);
        Unsafe.Add(ref dst, 2) = Tail<TF>(Vector256.Sum(a2), ref w2, ref x, i, n);
        Unsafe.Add(ref dst, 3) = Tail<TF>(Vector256.Sum(a3), ref w3, ref x, i, n);
    }
    /// <summary>
    /// Four stored rows <paramref name="stride"/> bytes apart (weights in place, or a widened scratch) times
    /// <typeparamref name="TN"/> tokens: a register tile for small batches, where each weight vector loaded serves every
    /// token. Output (row r, token t) goes to y[t × <paramref name="yToken"/> + r × <paramref name="yRow"/>]. Each
    /// element is summed exactly as <see cref="Dot1V512{TF}"/> (or <see cref="Dot1V256{TF}"/>) sums it.
    /// </summary>
    public static unsafe void Dot4xT<TF, TN>(ref byte w0, nint stride, float* x, nint xStride, int n, float* y, nint yToken, nint yRow, Isa isa)
        where TF : IRowFormat where TN : ITokens
    {
        if (isa == Isa.Vector512) Dot4xTV512<TF, TN>(ref w0, stride, x, xStride, n, y, yToken, yRow);
        else if (isa == Isa.Vector256) Dot4xTV256<TF, TN>(ref w0, stride, x, xStride, n, y, yToken, yRow);
        else
            for (int t = 0; t < TN.Count; t++)
                for (int r = 0; r < 4; r++)
                    y[t * yToken + r * yRow] = Dot1Scalar<TF>(ref Unsafe.Add(ref w0, stride * r), ref Unsafe.AsRef<float>(x + t * xStride), n);
    }

    private static unsafe void Dot4xTV512<TF, TN>(ref byte w0, nint stride, float* x0, nint xStride, int n, float* y, nint yToken, nint yRow)
        where TF : IRowFormat where TN : ITokens
    {
        ref byte w1 = ref Unsafe.Add(ref w0, stride);
        ref byte w2 = ref Unsafe.Add(ref w1, stride);
        ref byte w3 = ref Unsafe.Add(ref w2, stride);
        float* x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        nint i = 0, end = n & ~15;
        byte* p0 = (byte*)Unsafe.AsPointer(ref w0), p1 = (byte*)Unsafe.AsPointer(ref w1), p2 = (byte*)Unsafe.AsPointer(ref w2), p3 = (byte*)Unsafe.AsPointer(ref w3);
        for (; i < end; i += 16)
        {
            if (((i * TF.BlockBytes) & 63) == 0) Prefetch4(p0, p1, p2, p3, i * TF.BlockBytes);
            var v0 = TF.Load512(ref w0, i);
            var v1 = TF.Load512(ref w1, i);
            var v2 = TF.Load512(ref w2, i);
            var v3 = TF.Load512(ref w3, i);
            var x = Vector512.Load(x0 + i);
            a00 = Vector512.FusedMultiplyAdd(v0, x, a00); a10 = Vector512.FusedMultiplyAdd(v1, x, a10);
            a20 = Vector512.FusedMultiplyAdd(v2, x, a20); a30 = Vector512.FusedMultiplyAdd(v3, x, a30);
            if (TN.Count > 1)
            {
                x = Vector512.Load(x1 + i);
                a01 = Vector512.FusedMultiplyAdd(v0, x, a01); a11 = Vector512.FusedMultiplyAdd(v1, x, a11);
                a21 = Vector512.FusedMultiplyAdd(v2, x, a21); a31 = Vector512.FusedMultiplyAdd(v3, x, a31);
            }
            if (TN.Count > 2)
            {
                x = Vector512.Load(x2 + i);
                a02 = Vector512.FusedMultiplyAdd(v0, x, a02); a12 = Vector512.FusedMultiplyAdd(v1, x, a12);
                a22 = Vector512.FusedMultiplyAdd(v2, x, a22); a32 = Vector512.FusedMultiplyAdd(v3, x, a32);
            }
            if (TN.Count > 3)
            {
                x = Vector512.Load(x3 + i);
                a03 = Vector512.FusedMultiplyAdd(v0, x, a03); a13 = Vector512.FusedMultiplyAdd(v1, x, a13);
                a23 = Vector512.FusedMultiplyAdd(v2, x, a23); a33 = Vector512.FusedMultiplyAdd(v3, x, a33);
            }
        }
        Store4<TF>(Vector512.Sum(a00), Vector512.Sum(a10), Vector512.Sum(a20), Vector512.Sum(a30), ref w0, stride, x0, i, n, y, yRow);
        if (TN.Count > 1) Store4<TF>(Vector512.Sum(a01), Vector512.Sum(a11), Vector512.Sum(a21), Vector512.Sum(a31), ref w0, stride, x1, i, n, y + yToken, yRow);
        if (TN.Count > 2) Store4<TF>(Vector512.Sum(a02), Vector512.Sum(a12), Vector512.Sum(a22), Vector512.Sum(a32), ref w0, stride, x2, i, n, y + 2 * yToken, yRow);
        if (TN.Count > 3) Store4<TF>(Vector512.Sum(a03), Vector512.Sum(a13), Vector512.Sum(a23), Vector512.Sum(a33), ref w0, stride, x3, i, n, y + 3 * yToken, yRow);
    }

    // AVX2 has 16 vector registers: four rows by two tokens (eight accumulators) is the largest tile that stays in them.
    private static unsafe void Dot4xTV256<TF, TN>(ref byte w0, nint stride, float* x0, nint xStride, int n, float* y, nint yToken, nint yRow)
        where TF : IRowFormat where TN : ITokens
    {
        float* dst = stackalloc float[4];
        for (int t = 0; t < TN.Count; t += 2)
        {
            if (TN.Count - t >= 2) Dot4x2V256<TF>(ref w0, stride, x0 + t * xStride, xStride, n, y + t * yToken, yToken, yRow);
            else
            {
                Dot4V256<TF>(ref w0, stride, ref Unsafe.AsRef<float>(x0 + t * xStride), n, ref Unsafe.AsRef<float>(dst));
                for (int r = 0; r < 4; r++) y[t * yToken + r * yRow] = dst[r];
            }
        }
    }

    private static unsafe void Dot4x2V256<TF>(ref byte w0, nint stride, float* x0, nint xStride, int n, float* y, nint yToken, nint yRow)
        where TF : IRowFormat
    {
        ref byte w1 = ref Unsafe.Add(ref w0, stride);
        ref byte w2 = ref Unsafe.Add(ref w1, stride);
        ref byte w3 = ref Unsafe.Add(ref w2, stride);
        float* x1 = x0 + xStride;
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        nint i = 0, end = n & ~7;
        byte* p0 = (byte*)Unsafe.AsPointer(ref w0), p1 = (byte*)Unsafe.AsPointer(ref w1), p2 = (byte*)Unsafe.AsPointer(ref w2), p3 = (byte*)Unsafe.AsPointer(ref w3);
        for (; i < end; i += 8)
        {
            if (((i * TF.BlockBytes) & 63) == 0) Prefetch4(p0, p1, p2, p3, i * TF.BlockBytes);
            var x = Vector256.Load(x0 + i);
            var z = Vector256.Load(x1 + i);
            var v = TF.Load256(ref w0, i);
            a00 = Vector256.FusedMultiplyAdd(v, x, a00); a01 = Vector256.FusedMultiplyAdd(v, z, a01);
            v = TF.Load256(ref w1, i);
            a10 = Vector256.FusedMultiplyAdd(v, x, a10); a11 = Vector256.FusedMultiplyAdd(v, z, a11);
            v = TF.Load256(ref w2, i);
            a20 = Vector256.FusedMultiplyAdd(v, x, a20); a21 = Vector256.FusedMultiplyAdd(v, z, a21);
            v = TF.Load256(ref w3, i);
            a30 = Vector256.FusedMultiplyAdd(v, x, a30); a31 = Vector256.FusedMultiplyAdd(v, z, a31);
        }
        Store4<TF>(Vector256.Sum(a00), Vector256.Sum(a10), Vector256.Sum(a20), Vector256.Sum(a30), ref w0, stride, x0, i, n, y, yRow);
        Store4<TF>(Vector256.Sum(a01), Vector256.Sum(a11), Vector256.Sum(a21), Vector256.Sum(a31), ref w0, stride, x1, i, n, y + yToken, yRow);
    }

    /// <summary>
    /// How far ahead of its loads a small-batch tile asks for weight rows. Several tokens per weight vector keep the
    /// core busy with multiply-adds, so fewer loads are in flight than the memory latency needs and the hardware
    /// prefetcher falls behind; asking 2 KiB ahead took an 8-token product over a 272 MB matrix from about 133 to 160
    /// GFLOP/s on the project machine (one token per row, a pure stream, gains nothing and does without).
    /// </summary>
    private const int PrefetchBytes = 2048;

    /// <summary>Prefetches the line <see cref="PrefetchBytes"/> past byte <paramref name="at"/> of four rows (a hint: never faults).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch4(byte* p0, byte* p1, byte* p2, byte* p3, nint at)
    {
        if (!Sse.IsSupported) return;
        Sse.Prefetch0(p0 + at + PrefetchBytes);
        Sse.Prefetch0(p1 + at + PrefetchBytes);
        Sse.Prefetch0(p2 + at + PrefetchBytes);
        Sse.Prefetch0(p3 + at + PrefetchBytes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store4<TF>(float s0, float s1, float s2, float s3, ref byte w0, nint stride, float* x, nint i, int n, float* y, nint yRow)
        where TF : IRowFormat
    {
        ref float xr = ref Unsafe.AsRef<float>(x);
        y[0] = Tail<TF>(s0, ref w0, ref xr, i, n);
        y[yRow] = Tail<TF>(s1, ref Unsafe.Add(ref w0, stride), ref xr, i, n);
        y[2 * yRow] = Tail<TF>(s2, ref Unsafe.Add(ref w0, 2 * stride), ref xr, i, n);
        y[3 * yRow] = Tail<TF>(s3, ref Unsafe.Add(ref w0, 3 * stride), ref xr, i, n);
    }
}
