using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// The scale searches of ggml's K-quant reference quantizers (ggml-quants.c: nearest_int, make_qx_quants with
/// rmse_type 1 and no importance weights, make_qkx2_quants), as llama.cpp runs them without an importance matrix.
/// Read from ggml-org/llama.cpp ggml/src/ggml-quants.c (stored commit 01243c587feceaa5d6a6c2305535ef2f549c48b8); the
/// float operations follow its order, without fused multiply-adds.
/// </summary>
internal static class QuantSearch
{
    /// <summary>ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it is all zero.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>ggml's nearest_int: round to nearest, ties to even (its 1.5·2^23 trick rounds the same way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float x) => (int)MathF.Round(x);

    /// <summary>ggml's binary16 conversion of a scale (round to nearest even), as stored bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToHalfBits(float x) => BitConverter.HalfToUInt16Bits((Half)x);

    /// <summary>The float32 value of a binary16 scale as stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromHalfBits(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>
    /// make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): a signed scale for levels −nmax..nmax−1 (stored in
    /// <paramref name="levels"/> as l + nmax), weighted by x², trying 18 scales around −nmax / max.
    /// </summary>
    public static float SignedScale(ReadOnlySpan<float> x, int nmax, Span<sbyte> levels)
    {
        int n = x.Length;
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            levels[..n].Clear();
            return 0f;
        }
        // The weights x² and the products w·x, formed once: every pass computes the same float values from them.
        Span<float> w = stackalloc float[n];
        Span<float> wx = stackalloc float[n];
        for (int i = 0; i < n; i++) { w[i] = x[i] * x[i]; wx[i] = w[i] * x[i]; }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)(l + nmax);
            sumlx += wx[i] * l;
            suml2 += w[i] * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                sumlx += wx[i] * l;
                suml2 += w[i] * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++) levels[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>
    /// make_qkx2_quants(n, nmax, x, weights, L, &amp;the_min, Laux, rmin, rdelta, nstep, use_mad = false): a scale and a
    /// minimum (returned as −min, never negative) for levels 0..nmax, refined by weighted least squares over
    /// <paramref name="nstep"/> + 1 trial scales.
    /// </summary>
    public static float ScaleAndMin(ReadOnlySpan<float> x, ReadOnlySpan<float> weights, int nmax, Span<byte> levels, Span<byte> scratch,
        out float theMin, float rmin, float rdelta, int nstep)
    {
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            levels[..n].Clear();
            theMin = -min;
            return 0f;
        }
        // x − min, formed once per minimum: every pass computes the same float values from it.
        Span<float> shifted = stackalloc float[n];
        for (int i = 0; i < n; i++) shifted[i] = x[i] - min;
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * shifted[i]), 0, nmax);
            levels[i] = (byte)l;
            float diff = scale * l + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * shifted[i]), 0, nmax);
                scratch[i] = (byte)l;
                float wl = weights[i] * l;
                sumL += wl;
                sumL2 += wl * l;
                sumXL += wl * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * scratch[i] + thisMin - x[i];
                    error += weights[i] * (diff * diff);
                }
                if (error < bestError)
                {
                    scratch[..n].CopyTo(levels);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                    for (int i = 0; i < n; i++) shifted[i] = x[i] - min; // later trials start from the new minimum, as ggml's do
                }
            }
        }
        theMin = -min;
        return scale;
    }
}
