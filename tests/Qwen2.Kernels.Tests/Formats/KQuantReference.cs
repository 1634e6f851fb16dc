namespace Qwen2.Kernels.Tests;

/// <summary>
/// The K-quant super-blocks decoded in double straight from ggml's layout description (dequantize_row_q4_K, _q5_K,
/// _q6_K), written here apart from the kernels, plus random super-blocks and the kernels' entry points by type.
/// </summary>
internal static class KQuantReference
{
    public static readonly WeightType[] Types = [WeightType.Q4_K, WeightType.Q5_K, WeightType.Q6_K];

    public static int BlockBytes(WeightType t) => t switch { WeightType.Q4_K => 144, WeightType.Q5_K => 176, _ => 210 };

    /// <summary>Sub-block j's 6-bit scale and minimum from the 12 packed bytes at <paramref name="at"/>.</summary>
    private static (int Scale, int Min) ScaleMin(byte[] b, int at, int j) => j < 4
        ? (b[at + j] & 0x3F, b[at + j + 4] & 0x3F)
        : ((b[at + j + 4] & 0x0F) | ((b[at + j - 4] >> 6) << 4), (b[at + j + 4] >> 4) | ((b[at + j] >> 6) << 4));

    /// <summary>
    /// Super-block <paramref name="block"/> of <paramref name="b"/> as pairs (scaled value, subtracted minimum): the
    /// element is Scaled − Min (Min is 0 for Q6_K).
    /// </summary>
    public static (double Scaled, double Min)[] Decode(WeightType t, byte[] b, int block)
    {
        int o = block * BlockBytes(t);
        var y = new (double, double)[256];
        if (t == WeightType.Q6_K)
        {
            double d = Formats.HalfBitsToDouble(BitConverter.ToUInt16(b, o + 208));
            for (int n = 0; n < 2; n++)
            {
                int ql = o + 64 * n, qh = o + 128 + 32 * n, sc = o + 192 + 8 * n;
                for (int l = 0; l < 32; l++)
                {
                    int isc = l / 16;
                    int q1 = ((b[ql + l] & 0xF) | ((b[qh + l] & 3) << 4)) - 32;
                    int q2 = ((b[ql + l + 32] & 0xF) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
                    y[128 * n + l] = (d * (sbyte)b[sc + isc] * q1, 0);
                    y[128 * n + l + 32] = (d * (sbyte)b[sc + isc + 2] * q2, 0);
                    y[128 * n + l + 64] = (d * (sbyte)b[sc + isc + 4] * q3, 0);
                    y[128 * n + l + 96] = (d * (sbyte)b[sc + isc + 6] * q4, 0);
                }
            }
            return y;
        }
        double dd = Formats.HalfBitsToDouble(BitConverter.ToUInt16(b, o)), dmin = Formats.HalfBitsToDouble(BitConverter.ToUInt16(b, o + 2));
        bool five = t == WeightType.Q5_K;
        int qs = o + (five ? 48 : 16), high = o + 16;
        for (int c = 0; c < 4; c++)
        {
            var (sc1, m1) = ScaleMin(b, o + 4, 2 * c);
            var (sc2, m2) = ScaleMin(b, o + 4, 2 * c + 1);
            for (int l = 0; l < 32; l++)
            {
                int q = b[qs + 32 * c + l];
                int h1 = five && (b[high + l] & (1 << (2 * c))) != 0 ? 16 : 0;
                int h2 = five && (b[high + l] & (2 << (2 * c))) != 0 ? 16 : 0;
                y[64 * c + l] = (dd * sc1 * ((q & 0xF) + h1), dmin * m1);
                y[64 * c + 32 + l] = (dd * sc2 * ((q >> 4) + h2), dmin * m2);
            }
        }
        return y;
    }

    /// <summary>A finite binary16: ±0, a subnormal, or a normal up to 2^15 (<paramref name="wild"/>) or up to 1.</summary>
    public static ushort RandomHalf(Random rnd, bool wild)
    {
        int sign = rnd.Next(2) << 15, pick = rnd.Next(16);
        if (pick == 0) return (ushort)sign;
        if (pick == 1) return (ushort)(sign | rnd.Next(1, 0x400));
        int e = wild ? rnd.Next(1, 31) : rnd.Next(1, 16);
        return (ushort)(sign | (e << 10) | rnd.Next(0x400));
    }

    /// <summary><paramref name="blocks"/> super-blocks of random bytes with random finite d (and dmin).</summary>
    public static byte[] RandomRow(Random rnd, WeightType t, int blocks, bool wild)
    {
        int bb = BlockBytes(t);
        var w = new byte[blocks * bb];
        rnd.NextBytes(w);
        for (int b = 0; b < blocks; b++)
        {
            if (t == WeightType.Q6_K) BitConverter.TryWriteBytes(w.AsSpan(b * bb + 208), RandomHalf(rnd, wild));
            else
            {
                BitConverter.TryWriteBytes(w.AsSpan(b * bb), RandomHalf(rnd, wild));
                BitConverter.TryWriteBytes(w.AsSpan(b * bb + 2), RandomHalf(rnd, wild));
            }
        }
        return w;
    }

    public static float Dot(WeightType t, byte[] w, byte[] a, int blocks, Isa isa) => t switch
    {
        WeightType.Q4_K => Q4KFormat.Dot(ref w[0], ref a[0], blocks, isa),
        WeightType.Q5_K => Q5KFormat.Dot(ref w[0], ref a[0], blocks, isa),
        _ => Q6KFormat.Dot(ref w[0], ref a[0], blocks, isa),
    };

    public static float DotScalar(WeightType t, byte[] w, byte[] a, int blocks) => t switch
    {
        WeightType.Q4_K => Q4KFormat.DotScalar(ref w[0], ref a[0], blocks),
        WeightType.Q5_K => Q5KFormat.DotScalar(ref w[0], ref a[0], blocks),
        _ => Q6KFormat.DotScalar(ref w[0], ref a[0], blocks),
    };

    public static void DotTokens(WeightType t, byte[] w, byte[] a, nint stride, int tokens, int blocks, Span<float> dst, Isa isa)
    {
        switch (t)
        {
            case WeightType.Q4_K: Q4KFormat.DotTokens(ref w[0], ref a[0], stride, tokens, blocks, dst, isa); break;
            case WeightType.Q5_K: Q5KFormat.DotTokens(ref w[0], ref a[0], stride, tokens, blocks, dst, isa); break;
            default: Q6KFormat.DotTokens(ref w[0], ref a[0], stride, tokens, blocks, dst, isa); break;
        }
    }

    public static void DequantizeBlock(WeightType t, byte[] w, int block, Span<float> dst)
    {
        ref byte b = ref w[block * BlockBytes(t)];
        switch (t)
        {
            case WeightType.Q4_K: Q4KFormat.DequantizeBlock(ref b, dst); break;
            case WeightType.Q5_K: Q5KFormat.DequantizeBlock(ref b, dst); break;
            default: Q6KFormat.DequantizeBlock(ref b, dst); break;
        }
    }

    /// <summary>
    /// Activations for <paramref name="blocks"/> super-blocks, each block in its own range (from 1e-30 to 1e30, or all
    /// zero), quantized by the scalar twin.
    /// </summary>
    public static (float[] X, byte[] A) RandomActivations(Random rnd, int blocks)
    {
        float[] ranges = [0f, 1e-30f, 1e-3f, 1f, 1f, 1f, 50f, 1e4f, 1e30f];
        var x = new float[blocks * 256];
        for (int b = 0; b < blocks; b++)
        {
            float r = ranges[rnd.Next(ranges.Length)];
            for (int i = 0; i < 256; i++) x[b * 256 + i] = r * (2 * rnd.NextSingle() - 1);
        }
        var a = new byte[QuantizedActivations.ByteCount(ActivationFormat.Q8K, x.Length)];
        QuantizedActivations.Quantize(ActivationFormat.Q8K, x, a, Isa.Scalar);
        return (x, a);
    }
}
