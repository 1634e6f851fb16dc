using System.Buffers.Binary;

namespace Qwen2.Kernels;

/// <summary>
/// ggml's reference quantizers of the K-quant super-blocks of 256 (quantize_row_q4_K_ref, q5_K_ref, q6_K_ref in
/// ggml-org/llama.cpp ggml/src/ggml-quants.c, stored commit 01243c587feceaa5d6a6c2305535ef2f549c48b8), which llama.cpp
/// uses without an importance matrix: a scale search per sub-block (<see cref="QuantSearch"/>), the sub-block scales
/// quantized against one binary16 super-block scale, then every value requantized with the stored scales.
/// </summary>
internal static class KQuantizer
{
    /// <summary>Q4_K: 8 sub-blocks of 32, levels 0..15, make_qkx2_quants(rmin −1, rdelta 0.1, 20 steps).</summary>
    public static void Q4_K(ReadOnlySpan<float> x, Span<byte> y) => ScaleMin(x, y, nmax: 15, rmin: -1f, nstep: 20);

    /// <summary>Q5_K: 8 sub-blocks of 32, levels 0..31, make_qkx2_quants(rmin −0.5, rdelta 0.1, 15 steps).</summary>
    public static void Q5_K(ReadOnlySpan<float> x, Span<byte> y) => ScaleMin(x, y, nmax: 31, rmin: -0.5f, nstep: 15);

    // The shared body of Q4_K and Q5_K: they differ in levels, search parameters and how the levels are packed.
    private static void ScaleMin(ReadOnlySpan<float> x, Span<byte> y, int nmax, float rmin, int nstep)
    {
        Span<byte> levels = stackalloc byte[256];
        Span<byte> scratch = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = QuantSearch.ScaleAndMin(xs, weights, nmax, levels.Slice(32 * j, 32), scratch, out mins[j], rmin, 0.1f, nstep);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }

        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var packed = y.Slice(4, 12);
        packed.Clear();
        for (int j = 0; j < 8; j++)
        {
            // uint8_t truncation of nearest_int, then the clamp, as ggml does.
            int ls = Math.Min(63, (int)(byte)QuantSearch.NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, (int)(byte)QuantSearch.NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = (byte)ls;
                packed[j + 4] = (byte)lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
        ushort dBits = QuantSearch.ToHalfBits(maxScale / 63f), dminBits = QuantSearch.ToHalfBits(maxMin / 63f);
        BinaryPrimitives.WriteUInt16LittleEndian(y, dBits);
        BinaryPrimitives.WriteUInt16LittleEndian(y[2..], dminBits);
        float dAll = QuantSearch.FromHalfBits(dBits), dminAll = QuantSearch.FromHalfBits(dminBits);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = QuantMath.ScaleMinK4(j, ref packed[0]);
            float d = dAll * sc;
            if (d == 0) continue; // keeps the levels of the search, as ggml does
            float dm = dminAll * m;
            for (int i = 32 * j; i < 32 * j + 32; i++) levels[i] = (byte)Math.Clamp(QuantSearch.NearestInt((x[i] + dm) / d), 0, nmax);
        }

        if (nmax == 15)
        {
            var q = y.Slice(16, 128);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) q[32 * c + l] = (byte)(levels[64 * c + l] | (levels[64 * c + l + 32] << 4));
            return;
        }
        var qh = y.Slice(16, 32);
        var ql = y.Slice(48, 128);
        qh.Clear();
        for (int c = 0; c < 4; c++)
        {
            for (int l = 0; l < 32; l++)
            {
                int l1 = levels[64 * c + l], l2 = levels[64 * c + l + 32];
                if (l1 > 15) { l1 -= 16; qh[l] |= (byte)(1 << (2 * c)); }
                if (l2 > 15) { l2 -= 16; qh[l] |= (byte)(2 << (2 * c)); }
                ql[32 * c + l] = (byte)(l1 | (l2 << 4));
            }
        }
    }

    /// <summary>Q6_K: 16 groups of 16, signed levels −32..31 by make_qx_quants, int8 group scales against d = max scale / −128.</summary>
    public static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> levels = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int g = 0; g < 16; g++)
        {
            float scale = QuantSearch.SignedScale(x.Slice(16 * g, 16), 32, levels.Slice(16 * g, 16));
            scales[g] = scale;
            float abs = MathF.Abs(scale);
            if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
        }
        var block = y[..210];
        if (maxAbsScale < QuantSearch.GroupMaxEps)
        {
            block.Clear(); // an all-zero super-block, d = 0
            return;
        }
        float iscale = -128f / maxScale;
        ushort dBits = QuantSearch.ToHalfBits(1 / iscale);
        BinaryPrimitives.WriteUInt16LittleEndian(y[208..], dBits);
        var sc = y.Slice(192, 16);
        for (int g = 0; g < 16; g++) sc[g] = (byte)(sbyte)Math.Min(127, QuantSearch.NearestInt(iscale * scales[g]));
        float dAll = QuantSearch.FromHalfBits(dBits);
        for (int g = 0; g < 16; g++)
        {
            float d = dAll * (sbyte)sc[g];
            if (d == 0) continue; // keeps the levels of the search, as ggml does
            for (int i = 16 * g; i < 16 * g + 16; i++) levels[i] = (sbyte)(Math.Clamp(QuantSearch.NearestInt(x[i] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
        {
            var ql = y.Slice(64 * h, 64);
            var qh = y.Slice(128 + 32 * h, 32);
            for (int l = 0; l < 32; l++)
            {
                int b = 128 * h + l;
                int q1 = levels[b], q2 = levels[b + 32], q3 = levels[b + 64], q4 = levels[b + 96];
                ql[l] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}
