using System.Runtime.InteropServices;

namespace Qwen2.Kernels.Tests;

/// <summary>
/// Random ggml blocks and their values decoded here in double, from the layouts ggml documents (block_q8_0 … block_q6_K
/// and their dequantize_row_* definitions), independently of the kernels' own decoders.
/// </summary>
internal static class QuantizedData
{
    public static readonly WeightType[] Types =
        [WeightType.Q8_0, WeightType.Q4_0, WeightType.Q4_1, WeightType.Q5_0, WeightType.Q5_1, WeightType.Q4_K, WeightType.Q5_K, WeightType.Q6_K];

    public static readonly WeightType[] Block32Types = [WeightType.Q8_0, WeightType.Q4_0, WeightType.Q4_1, WeightType.Q5_0, WeightType.Q5_1];

    public static bool IsK(WeightType type) => type is WeightType.Q4_K or WeightType.Q5_K or WeightType.Q6_K;

    /// <summary>Elements per activation block of the type's activation format (its quantization step is max|x|/127 over it).</summary>
    public static int ActivationBlock(WeightType type) => IsK(type) ? 256 : 32;

    /// <summary>Byte offsets of the binary16 scale fields of one block.</summary>
    private static int[] HalfFields(WeightType type) => type switch
    {
        WeightType.Q8_0 or WeightType.Q4_0 or WeightType.Q5_0 => [0],
        WeightType.Q4_1 or WeightType.Q5_1 or WeightType.Q4_K or WeightType.Q5_K => [0, 2],
        WeightType.Q6_K => [208],
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>A finite binary16: zero (either sign), a subnormal, or a normal of moderate size; random sign.</summary>
    public static ushort RandomHalf(Random rnd)
    {
        int kind = rnd.Next(10);
        ushort sign = (ushort)(rnd.Next(2) << 15);
        if (kind == 0) return sign;
        if (kind == 1) return (ushort)(sign | rnd.Next(1, 0x400));
        return (ushort)(sign | (rnd.Next(1, 19) << 10) | rnd.Next(0x400)); // 2^-14 up to 2^3
    }

    /// <summary><paramref name="blocks"/> random blocks: random bits everywhere, random finite scales.</summary>
    public static byte[] RandomBlocks(Random rnd, WeightType type, int blocks)
    {
        int size = WeightTypes.BlockBytes(type);
        var bytes = new byte[blocks * size];
        rnd.NextBytes(bytes);
        for (int b = 0; b < blocks; b++)
            foreach (int f in HalfFields(type)) MemoryMarshal.Write(bytes.AsSpan(b * size + f), RandomHalf(rnd));
        return bytes;
    }

    private static double H(ReadOnlySpan<byte> p, int at) => Formats.HalfBitsToDouble(MemoryMarshal.Read<ushort>(p[at..]));

    /// <summary>
    /// Element values of one row in double, exact (q · d + m), and each one's term size |scale part| + |minimum part|,
    /// which scales the float rounding a dot product may add.
    /// </summary>
    public static (double[] Value, double[] Terms) Decode(WeightType type, ReadOnlySpan<byte> row, int n)
    {
        var v = new double[n];
        var t = new double[n];
        int bs = WeightTypes.BlockSize(type), bb = WeightTypes.BlockBytes(type);
        for (int b = 0; b < n / bs; b++)
        {
            var p = row.Slice(b * bb, bb);
            var (q, scale, min) = Fields(type, p);
            for (int i = 0; i < bs; i++)
            {
                double s = q[i] * scale[i];
                v[b * bs + i] = s + min[i];
                t[b * bs + i] = Math.Abs(s) + Math.Abs(min[i]);
            }
        }
        return (v, t);
    }

    /// <summary>One block's integers, and each element's scale and added minimum.</summary>
    private static (int[] Q, double[] Scale, double[] Min) Fields(WeightType type, ReadOnlySpan<byte> p)
    {
        int bs = WeightTypes.BlockSize(type);
        var q = new int[bs];
        var scale = new double[bs];
        var min = new double[bs];
        switch (type)
        {
            case WeightType.Q8_0:
                for (int i = 0; i < 32; i++) { q[i] = (sbyte)p[2 + i]; scale[i] = H(p, 0); }
                break;
            case WeightType.Q4_0 or WeightType.Q4_1:
            {
                bool m = type == WeightType.Q4_1;
                int o = m ? 4 : 2;
                for (int i = 0; i < 16; i++)
                {
                    q[i] = (p[o + i] & 15) - (m ? 0 : 8);
                    q[i + 16] = (p[o + i] >> 4) - (m ? 0 : 8);
                }
                for (int i = 0; i < 32; i++) { scale[i] = H(p, 0); min[i] = m ? H(p, 2) : 0; }
                break;
            }
            case WeightType.Q5_0 or WeightType.Q5_1:
            {
                bool m = type == WeightType.Q5_1;
                uint qh = MemoryMarshal.Read<uint>(p[(m ? 4 : 2)..]);
                int o = m ? 8 : 6;
                for (int i = 0; i < 16; i++)
                {
                    q[i] = ((p[o + i] & 15) | (int)((qh >> i) & 1) << 4) - (m ? 0 : 16);
                    q[i + 16] = ((p[o + i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4) - (m ? 0 : 16);
                }
                for (int i = 0; i < 32; i++) { scale[i] = H(p, 0); min[i] = m ? H(p, 2) : 0; }
                break;
            }
            case WeightType.Q4_K or WeightType.Q5_K:
            {
                bool five = type == WeightType.Q5_K;
                double d = H(p, 0), dmin = H(p, 2);
                var sc = p.Slice(4, 12);
                int qs = five ? 48 : 16;
                for (int j = 0; j < 8; j++)
                {
                    int s6, m6;
                    if (j < 4) { s6 = sc[j] & 63; m6 = sc[j + 4] & 63; }
                    else { s6 = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4); m6 = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
                    for (int l = 0; l < 32; l++)
                    {
                        int e = 32 * j + l, b = p[qs + 32 * (j / 2) + l];
                        q[e] = (j % 2 == 0 ? b & 15 : b >> 4) + (five && ((p[16 + l] >> j) & 1) != 0 ? 16 : 0);
                        scale[e] = d * s6;
                        min[e] = -dmin * m6;
                    }
                }
                break;
            }
            case WeightType.Q6_K:
            {
                double d = H(p, 208);
                for (int half = 0; half < 2; half++)
                    for (int l = 0; l < 32; l++)
                    {
                        int ql = 64 * half, qh = 128 + 32 * half, sc = 192 + 8 * half, y = 128 * half;
                        int h = p[qh + l];
                        int[] vals =
                        [
                            (p[ql + l] & 15) | ((h & 3) << 4), (p[ql + l + 32] & 15) | (((h >> 2) & 3) << 4),
                            (p[ql + l] >> 4) | (((h >> 4) & 3) << 4), (p[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4),
                        ];
                        for (int k = 0; k < 4; k++)
                        {
                            q[y + l + 32 * k] = vals[k] - 32;
                            scale[y + l + 32 * k] = d * (sbyte)p[sc + l / 16 + 2 * k];
                        }
                    }
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
        return (q, scale, min);
    }

    /// <summary>
    /// The float64 dot of decoded weights with unquantized x, and the bound an integer dot on quantized activations
    /// stays within: each activation moves by at most half its block's step max|x|/127 (plus float rounding of the
    /// quantization, 1e-6 relative), and the float steps round by at most 1e-5 of Σ terms · |x|.
    /// </summary>
    public static (double Exact, double Bound) Reference(WeightType type, double[] w, double[] terms, ReadOnlySpan<float> x)
    {
        int ab = ActivationBlock(type);
        double s = 0, bound = 1e-30;
        for (int b = 0; b < x.Length / ab; b++)
        {
            double amax = 0;
            for (int i = b * ab; i < b * ab + ab; i++) amax = Math.Max(amax, Math.Abs(x[i]));
            double step = amax / 127;
            for (int i = b * ab; i < b * ab + ab; i++)
            {
                s += w[i] * x[i];
                bound += Math.Abs(w[i]) * (0.5 * step + 1e-6 * amax) + 1e-5 * terms[i] * Math.Abs(x[i]);
            }
        }
        return (s, bound);
    }
}
