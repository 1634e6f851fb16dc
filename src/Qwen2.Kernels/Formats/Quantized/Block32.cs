using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>A ggml format of 32-element blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), dotted with <see cref="ActivationFormat.Q8"/> activations.</summary>
internal interface IBlock32 : IQuantFormat
{
    /// <summary>Whether values are unsigned with a per-block minimum (Q4_1, Q5_1) rather than signed (Q8_0, Q4_0, Q5_0).</summary>
    static abstract bool HasMin { get; }

    /// <summary>
    /// Rows of its prefill tile (<see cref="Block32.DotTile{T}"/>): 4 for a signed format, 2 for one with a minimum
    /// (see the tile's remarks).
    /// </summary>
    static abstract int TileRows { get; }

    /// <summary>The block's 32 integer values in element order, its scale and (for <see cref="HasMin"/>) its minimum.</summary>
    static abstract void Unpack(ref byte block, Span<int> q, out float d, out float min);

    /// <summary>
    /// The vector paths' <see cref="Unpack"/>: the block's 32 values as bytes in element order (two's complement for
    /// the signed formats). The scale is the binary16 at offset 0 and, for <see cref="HasMin"/>, the minimum the one at
    /// offset 2. Callers have checked <see cref="System.Runtime.Intrinsics.X86.Avx2.IsSupported"/>.
    /// </summary>
    static abstract Vector256<byte> Values256(ref byte block);

    /// <summary>
    /// For a signed format, what its values are offset by to make them unsigned bytes (<see cref="Offset256"/>): 128 for
    /// Q8_0, 8 for Q4_0, 16 for Q5_0.
    /// </summary>
    static virtual int Offset => throw new NotSupportedException("only the signed formats have an offset");

    /// <summary>For a signed format, the block's 32 values plus <see cref="Offset"/> as unsigned bytes, in element order.</summary>
    static virtual Vector256<byte> Offset256(ref byte block) => throw new NotSupportedException("only the signed formats have an offset");

    /// <summary>
    /// For a signed format, <see cref="Offset256"/> of two blocks in halves: <c>Low</c> holds elements 0-15 of
    /// <paramref name="first"/> and then of <paramref name="second"/>, <c>High</c> elements 16-31 of each (the layout
    /// of a row pair whose sums land folded, see <see cref="Block32.Dot4Rows{T}"/>), unpacked from both blocks at once.
    /// </summary>
    static virtual (Vector256<byte> Low, Vector256<byte> High) OffsetHalves256(ref byte first, ref byte second) =>
        throw new NotSupportedException("only the signed formats have an offset");
}

/// <summary>
/// The dot product of a 32-element-block row with Q8 activations. Its defined order (the scalar twin): each block's
/// products are summed exactly as integers in eight lanes of four consecutive elements, p_j. A format with a minimum
/// keeps eight float lanes: lane j accumulates fma(p_j, d_w · d_a, acc_j) block after block, the lanes are added by
/// <see cref="QuantMath.Sum8(ReadOnlySpan{float})"/>, and Σ fma(min, s_a), accumulated block after block, is added. A
/// signed format keeps four: lane j accumulates fma(p_j + p_(j+4), d_w · d_a, acc_j), added by
/// <see cref="QuantMath.Sum4(ReadOnlySpan{float})"/>; the integer halves are folded before the float step, so a tile
/// converts and scales one vector for two tokens where eight lanes would take two (see <see cref="Prepare{T}"/>).
/// </summary>
internal static partial class Block32
{
    public static float Dot<T>(ref byte w, ref byte a, int blocks, Isa isa) where T : IBlock32 => isa switch
    {
        Isa.Vector512 => DotV512<T>(ref w, ref a, blocks),
        Isa.Vector256 => DotV256<T>(ref w, ref a, blocks),
        _ => DotScalar<T>(ref w, ref a, blocks),
    };

    /// <summary>The scalar twin: the defined order, as written.</summary>
    public static float DotScalar<T>(ref byte w, ref byte a, int blocks) where T : IBlock32
    {
        Span<int> q = stackalloc int[32];
        Span<float> acc = stackalloc float[8];
        Span<int> p = stackalloc int[8];
        acc.Clear();
        float minTerm = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref byte ab = ref Unsafe.Add(ref a, b * QuantizedActivations.Q8Bytes);
            T.Unpack(ref Unsafe.Add(ref w, b * T.BlockBytes), q, out float dw, out float min);
            float d = dw * QuantMath.Single(ref ab);
            for (int j = 0; j < 8; j++)
            {
                p[j] = 0;
                for (int k = 4 * j; k < 4 * j + 4; k++) p[j] += q[k] * (sbyte)Unsafe.Add(ref ab, QuantizedActivations.Q8Values + k);
            }
            if (T.HasMin)
            {
                for (int j = 0; j < 8; j++) acc[j] = MathF.FusedMultiplyAdd(p[j], d, acc[j]);
                minTerm = MathF.FusedMultiplyAdd(min, QuantMath.Single(ref Unsafe.Add(ref ab, 4)), minTerm);
            }
            else
            {
                for (int j = 0; j < 4; j++) acc[j] = MathF.FusedMultiplyAdd(p[j] + p[j + 4], d, acc[j]);
            }
        }
        return T.HasMin ? QuantMath.Sum8(acc) + minTerm : QuantMath.Sum4(acc[..4]);
    }

    /// <summary>ggml's dequantization: q · d, or q · d + min.</summary>
    public static void Dequantize<T>(ref byte block, Span<float> destination) where T : IBlock32
    {
        Span<int> q = stackalloc int[32];
        T.Unpack(ref block, q, out float d, out float min);
        for (int i = 0; i < 32; i++) destination[i] = T.HasMin ? q[i] * d + min : q[i] * d;
    }
}
