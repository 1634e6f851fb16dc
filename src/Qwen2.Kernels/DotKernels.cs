using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
}
