using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

internal readonly partial struct Q6KFormat
{
    /// <summary>
    /// The tile's pieces (<see cref="KTile"/>): vector k (elements 32k .. 32k + 31, groups 2k and 2k + 1) meets
    /// [sc_2k x 8, sc_2k+1 x 8]; the −32 offset starts each sum as −32 · Σ_g sc_g · bsum_g (at most 32 · 128 · 2 · 2032
    /// per lane, exact), so the sums are <see cref="Step"/>'s, and the float step per lane is its fma.
    /// </summary>
    internal readonly unsafe struct Tile : IKTileKernel
    {
        public static int SuperBlockBytes => BlockBytes;

        public static bool HasOffset => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<short> Scales(ref byte block, Vector256<short>* scales)
        {
            var sc8 = Vector128.LoadUnsafe(ref block, 192).AsSByte();
            var control = Vector128.Create(0x0000_0000_0000_0000ul, 0x0101_0101_0101_0101ul).AsSByte();
            for (int k = 0; k < 8; k++)
            {
                scales[k] = Avx2.ConvertToVector256Int16(Ssse3.Shuffle(sc8, control));
                control += Vector128.Create((sbyte)2);
            }
            return -(Scales16(ref block) << 5); // at most 128 · 32 in magnitude: an int16
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Unpack(ref byte block, Vector256<byte>* values)
        {
            for (int h = 0; h < 2; h++)
            {
                var (k0, k1, k2, k3) = Half256(ref block, h);
                values[4 * h] = k0;
                values[4 * h + 1] = k1;
                values[4 * h + 2] = k2;
                values[4 * h + 3] = k3;
            }
        }

        /// <summary>Vector k as <see cref="Unpack"/> wrote it: a half's four vectors share their loads, so they are unpacked together.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Values(ref byte block, Vector256<byte>* values, int k) => Avx.LoadVector256((byte*)(values + k));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (float D, float DMin) RowScales(ref byte block) => (QuantMath.Half(ref Unsafe.Add(ref block, 208)), 0);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Step(Vector256<float> acc, Vector256<int> sumi, Vector256<short> r0, Vector256<short> r1,
            Vector256<float> d, Vector256<float> dmin, ref byte a, nint aStride)
        {
            return Vector256.FusedMultiplyAdd(d * KTile.PerToken(ref a, aStride), Vector256.ConvertToSingle(sumi), acc);
        }
    }
}
