using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Qwen2.Kernels;

/// <summary>
/// Float32 activations quantized to int8 blocks for the integer dot products of <see cref="IQuantFormat"/> formats.
/// Every path rounds to nearest, ties to even, after the same float operations, so all give the same bytes.
/// </summary>
internal static partial class QuantizedActivations
{
    /// <summary>Elements in a <see cref="ActivationFormat.Q8"/> block.</summary>
    public const int Q8Size = 32;
    /// <summary>Bytes of a <see cref="ActivationFormat.Q8"/> block: d, s, 32 int8.</summary>
    public const int Q8Bytes = 8 + Q8Size;
    /// <summary>Elements in a <see cref="ActivationFormat.Q8K"/> block.</summary>
    public const int Q8KSize = 256;
    /// <summary>
    /// Bytes of a <see cref="ActivationFormat.Q8K"/> block: d, 256 int8, 16 int16 group sums, then the 8 sums of 32
    /// (the group sums added in pairs) twice, which Q4_K's and Q5_K's minimum terms read as one 256-bit vector.
    /// </summary>
    public const int Q8KBytes = 4 + Q8KSize + 2 * (Q8KSize / 16) + 2 * 2 * (Q8KSize / 32);
    /// <summary>Offset of the int8 values in a Q8 block.</summary>
    public const int Q8Values = 8;
    /// <summary>Offset of the int8 values in a Q8K block.</summary>
    public const int Q8KValues = 4;
    /// <summary>Offset of the 16 group sums in a Q8K block.</summary>
    public const int Q8KSums = 4 + Q8KSize;
    /// <summary>Offset of the 8 sums of 32 in a Q8K block, and of their copy 16 bytes after.</summary>
    public const int Q8KPairs = Q8KSums + 2 * (Q8KSize / 16);

    /// <summary>Elements per block of <paramref name="format"/>.</summary>
    public static int BlockSize(ActivationFormat format) => format == ActivationFormat.Q8 ? Q8Size : Q8KSize;

    /// <summary>Bytes per block of <paramref name="format"/>.</summary>
    public static int BlockBytes(ActivationFormat format) => format == ActivationFormat.Q8 ? Q8Bytes : Q8KBytes;

    /// <summary>Bytes that <paramref name="elements"/> activations take in <paramref name="format"/> (a whole number of blocks).</summary>
    public static int ByteCount(ActivationFormat format, int elements)
    {
        int size = BlockSize(format);
        if (elements % size != 0) throw new ArgumentException($"{elements} activations are not whole {format} blocks of {size}", nameof(elements));
        return checked(elements / size * BlockBytes(format));
    }

    /// <summary>Quantizes <paramref name="x"/> (a whole number of blocks) into <paramref name="destination"/>.</summary>
    public static void Quantize(ActivationFormat format, ReadOnlySpan<float> x, Span<byte> destination, Isa isa)
    {
        int need = ByteCount(format, x.Length);
        if (destination.Length < need) throw new ArgumentException($"destination holds {destination.Length} bytes, {need} needed", nameof(destination));
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref byte d = ref MemoryMarshal.GetReference(destination);
        int blocks = x.Length / BlockSize(format);
        if (format == ActivationFormat.Q8) QuantizeQ8(ref xr, ref d, blocks, isa);
        else QuantizeQ8K(ref xr, ref d, blocks, isa);
    }

    /// <summary>The scale of a block whose largest magnitude is <paramref name="amax"/>, and its inverse (0 for an all-zero block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (float D, float Inverse) Scale(float amax)
    {
        float d = amax / 127f;
        return (d, d != 0 ? 1f / d : 0f);
    }

    // Vector paths are added beside these; each must produce these bytes.
    private static partial void QuantizeQ8(ref float x, ref byte dst, int blocks, Isa isa);
    private static partial void QuantizeQ8K(ref float x, ref byte dst, int blocks, Isa isa);

    /// <summary>The scalar twin of Q8 quantization.</summary>
    public static void QuantizeQ8Scalar(ref float x, ref byte dst, int blocks)
    {
        for (int b = 0; b < blocks; b++)
        {
            ref float xb = ref Unsafe.Add(ref x, b * Q8Size);
            ref byte o = ref Unsafe.Add(ref dst, b * Q8Bytes);
            float amax = 0;
            for (int i = 0; i < Q8Size; i++) amax = MathF.Max(amax, MathF.Abs(Unsafe.Add(ref xb, i)));
            var (d, id) = Scale(amax);
            int sum = 0;
            for (int i = 0; i < Q8Size; i++)
            {
                int q = (int)MathF.Round(Unsafe.Add(ref xb, i) * id);
                Unsafe.Add(ref o, Q8Values + i) = (byte)(sbyte)q;
                sum += q;
            }
            Unsafe.WriteUnaligned(ref o, d);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, 4), d * sum);
        }
    }

    /// <summary>The scalar twin of Q8K quantization.</summary>
    public static void QuantizeQ8KScalar(ref float x, ref byte dst, int blocks)
    {
        for (int b = 0; b < blocks; b++)
        {
            ref float xb = ref Unsafe.Add(ref x, b * Q8KSize);
            ref byte o = ref Unsafe.Add(ref dst, b * Q8KBytes);
            float amax = 0;
            for (int i = 0; i < Q8KSize; i++) amax = MathF.Max(amax, MathF.Abs(Unsafe.Add(ref xb, i)));
            var (d, id) = Scale(amax);
            Unsafe.WriteUnaligned(ref o, d);
            for (int g = 0; g < Q8KSize / 16; g++)
            {
                int sum = 0;
                for (int i = 16 * g; i < 16 * g + 16; i++)
                {
                    int q = (int)MathF.Round(Unsafe.Add(ref xb, i) * id);
                    Unsafe.Add(ref o, Q8KValues + i) = (byte)(sbyte)q;
                    sum += q;
                }
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, Q8KSums + 2 * g), (short)sum);
            }
            WritePairs(ref o);
        }
    }

    /// <summary>Writes a Q8K block's sums of 32 (at most 32 · 128 in magnitude: an int16) from its group sums, twice.</summary>
    private static void WritePairs(ref byte block)
    {
        for (int s = 0; s < Q8KSize / 32; s++)
        {
            short pair = (short)(Unsafe.ReadUnaligned<short>(ref Unsafe.Add(ref block, Q8KSums + 4 * s))
                + Unsafe.ReadUnaligned<short>(ref Unsafe.Add(ref block, Q8KSums + 4 * s + 2)));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref block, Q8KPairs + 2 * s), pair);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref block, Q8KPairs + 16 + 2 * s), pair);
        }
    }
}
