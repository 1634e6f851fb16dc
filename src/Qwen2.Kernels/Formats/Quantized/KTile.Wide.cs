using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <remarks>
/// The 512-bit form of the tile, where <see cref="WideTiles.Preferred"/>: each accumulator holds both rows' eight
/// lanes for one token, so a prepared vector k of both rows is one load, each token's 32 activations are broadcast to
/// both halves by theirs, and a (vector, token) is vpmaddubsw, vpmaddwd and an add at 512 bits for the 256-bit tile's
/// six operations. The halves are then the 256-bit tile's s_0t and s_1t, so the reduction and the float steps are its own.
/// </remarks>
internal static unsafe partial class KTile
{
    /// <summary>
    /// <see cref="RunPrepared{TK, TM}"/> at 512 bits: the same outputs, bit for bit. Callers have checked
    /// <see cref="Avx512BW.IsSupported"/> and <see cref="Avx512DQ.IsSupported"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // compiled alone, so its helpers always fit its inlining budget
    public static void RunPrepared512<TK>(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride)
        where TK : IKTileKernel
    {
        if (!Avx512BW.IsSupported || !Avx512DQ.IsSupported) throw new PlatformNotSupportedException("AVX-512 BW and DQ are not supported on this CPU");
        Vector256<float> acc = default;
        fixed (byte* pa = &a) // activations are unmanaged memory in production; pinned for the tests' arrays
        {
            for (int b = 0; b < blocks; b++)
            {
                byte* ab = pa + (nint)b * QuantizedActivations.Q8KBytes;
                var values = (Vector512<byte>*)(prepared + (nint)b * PreparedSuperBlock);
                var scales = (Vector512<short>*)(values + 8);
                var o0 = ((Vector256<short>*)values)[32];
                var o1 = ((Vector256<short>*)values)[33];
                Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
                if (TK.HasOffset)
                {
                    var o = Vector512.Create(o0, o1);
                    s0 = Offset(ab, o);
                    s1 = Offset(ab + aStride, o);
                    s2 = Offset(ab + 2 * aStride, o);
                    s3 = Offset(ab + 3 * aStride, o);
                }
                // Written out, so each vector's offsets are constants.
                byte* av = ab + QuantizedActivations.Q8KValues;
                Vector(0, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(1, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(2, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(3, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(4, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(5, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(6, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                Vector(7, values, scales, av, aStride, ref s0, ref s1, ref s2, ref s3);
                var sumi = Reduce(s0.GetLower(), s1.GetLower(), s2.GetLower(), s3.GetLower(),
                    s0.GetUpper(), s1.GetUpper(), s2.GetUpper(), s3.GetUpper());
                acc = TK.Step(acc, sumi, o0, o1, ((Vector256<float>*)values)[34], ((Vector256<float>*)values)[35], ref *ab, aStride);
            }
        }
        for (int t = 0; t < Tokens; t++)
        {
            y[t * yStride] = acc.GetElement(t);
            y[t * yStride + 1] = acc.GetElement(4 + t);
        }
    }

    /// <summary>Vector k of both rows against the four tokens: pair sums, times both rows' scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Vector(int k, Vector512<byte>* values, Vector512<short>* scales, byte* av, nint aStride,
        ref Vector512<int> s0, ref Vector512<int> s1, ref Vector512<int> s2, ref Vector512<int> s3)
    {
        var v = values[k];
        var c = scales[k];
        byte* ak = av + 32 * k;
        s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v, Broadcast(ak)), c);
        s1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v, Broadcast(ak + aStride)), c);
        s2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v, Broadcast(ak + 2 * aStride)), c);
        s3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v, Broadcast(ak + 3 * aStride)), c);
    }

    /// <summary>
    /// 32 bytes at <paramref name="p"/> in both halves: vbroadcasti32x8, since .NET 10's vbroadcasti64x4 (Avx512F, long*)
    /// scales an 8-bit displacement as if it read 16 bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Broadcast(byte* p) => Avx512DQ.BroadcastVector256ToVector512((int*)p).AsSByte();

    /// <summary>The offset terms of one token with both rows: its 16 group sums times each row's offset lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Offset(byte* activationBlock, Vector512<short> o) =>
        Avx512BW.MultiplyAddAdjacent(Broadcast(activationBlock + QuantizedActivations.Q8KSums).AsInt16(), o);

    /// <summary><see cref="Prepare{TK}"/>, then <see cref="RunPrepared512{TK}"/>, on raw rows (allocates: for tests).</summary>
    internal static void Run512<TK>(ref byte w, nint rowBytes, ref byte a, nint aStride, int blocks, float* y, nint yStride) where TK : IKTileKernel
    {
        if (!Avx512BW.IsSupported || !Avx512DQ.IsSupported) throw new PlatformNotSupportedException("AVX-512 BW and DQ are not supported on this CPU");
        var prepared = new byte[PreparedBytes(blocks)];
        fixed (byte* p = prepared)
        {
            Prepare<TK>(ref w, rowBytes, blocks, p);
            RunPrepared512<TK>(p, ref a, aStride, blocks, y, yStride);
        }
    }
}
