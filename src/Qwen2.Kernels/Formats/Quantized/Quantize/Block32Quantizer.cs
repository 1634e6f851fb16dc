using System.Buffers.Binary;

namespace Qwen2.Kernels;

/// <summary>
/// ggml's reference quantizers of the 32-element formats (quantize_row_q8_0_ref, q4_0, q4_1, q5_0, q5_1 in
/// ggml-org/llama.cpp ggml/src/ggml-quants.c, stored commit 01243c587feceaa5d6a6c2305535ef2f549c48b8), which llama.cpp
/// uses for these types without an importance matrix. Each method quantizes one block of 32 values.
/// </summary>
internal static class Block32Quantizer
{
    /// <summary>Q8_0: d = amax / 127, q = round(x / d) with ties away from zero (C's roundf).</summary>
    public static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        BinaryPrimitives.WriteUInt16LittleEndian(y, QuantSearch.ToHalfBits(d));
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)RoundHalfAway(x[j] * id);
    }

    /// <summary>C's roundf: to nearest, ties away from zero (v − trunc(v) is exact, so the comparison is too).</summary>
    private static int RoundHalfAway(float v)
    {
        float t = MathF.Truncate(v), f = v - t;
        return (int)t + (f >= 0.5f ? 1 : f <= -0.5f ? -1 : 0);
    }

    /// <summary>Q4_0: d = max / −8 where max is the first value of largest magnitude; q = min(15, trunc(x / d + 8.5)).</summary>
    public static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedMax(x) / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        BinaryPrimitives.WriteUInt16LittleEndian(y, QuantSearch.ToHalfBits(d));
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
            int q1 = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
            y[2 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    /// <summary>Q4_1: d = (max − min) / 15, m = min; q = min(15, trunc((x − min) / d + 0.5)).</summary>
    public static void Q4_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var (min, id) = MinAndScale(x, y, 15);
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
            int q1 = Math.Min(15, (int)((x[j + 16] - min) * id + 0.5f));
            y[4 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    /// <summary>Q5_0: d = max / −16; q = min(31, trunc(x / d + 16.5)), fifth bits in a 32-bit word.</summary>
    public static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedMax(x) / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        BinaryPrimitives.WriteUInt16LittleEndian(y, QuantSearch.ToHalfBits(d));
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(31, (int)(x[j] * id + 16.5f));
            int q1 = Math.Min(31, (int)(x[j + 16] * id + 16.5f));
            y[6 + j] = (byte)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint)((q0 >> 4) & 1) << j;
            qh |= (uint)((q1 >> 4) & 1) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[2..], qh);
    }

    /// <summary>Q5_1: d = (max − min) / 31, m = min; q = trunc((x − min) / d + 0.5), fifth bits in a 32-bit word.</summary>
    public static void Q5_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        var (min, id) = MinAndScale(x, y, 31);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            // ggml casts to uint8_t without a clamp; the value never exceeds 31.
            int q0 = (byte)(int)((x[j] - min) * id + 0.5f);
            int q1 = (byte)(int)((x[j + 16] - min) * id + 0.5f);
            y[8 + j] = (byte)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint)((q0 >> 4) & 1) << j;
            qh |= (uint)((q1 >> 4) & 1) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[4..], qh);
    }

    /// <summary>The first value whose magnitude is the largest (ggml's amax / max pair), 0 for an all-zero block.</summary>
    private static float SignedMax(ReadOnlySpan<float> x)
    {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
        {
            float a = MathF.Abs(x[j]);
            if (amax < a) { amax = a; max = x[j]; }
        }
        return max;
    }

    /// <summary>Writes d = (max − min) / <paramref name="levels"/> and m = min; returns min and 1 / d (0 when d is 0).</summary>
    private static (float Min, float Inverse) MinAndScale(ReadOnlySpan<float> x, Span<byte> y, int levels)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        for (int j = 0; j < 32; j++)
        {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / levels;
        BinaryPrimitives.WriteUInt16LittleEndian(y, QuantSearch.ToHalfBits(d));
        BinaryPrimitives.WriteUInt16LittleEndian(y[2..], QuantSearch.ToHalfBits(min));
        return (min, d != 0 ? 1.0f / d : 0.0f);
    }
}
