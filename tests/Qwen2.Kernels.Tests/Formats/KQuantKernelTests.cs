using System.Runtime.Intrinsics;

namespace Qwen2.Kernels.Tests;

/// <summary>
/// The K-quant dot products (Q4_K, Q5_K, Q6_K against Q8K activations): every vector path and the multi-token kernels
/// return the scalar twin's bits; the scalar twin is within the quantization bound of the float64 dot of the weights
/// ggml's layout defines; the layouts themselves against super-blocks worked out by hand; and Q8K quantization's
/// bytes on every path.
/// </summary>
public class KQuantKernelTests
{
    public static TheoryData<Isa, WeightType> IsasAndTypes()
    {
        var data = new TheoryData<Isa, WeightType>();
        foreach (var isa in IsaSupport.Supported)
            foreach (var t in KQuantReference.Types) data.Add(isa, t);
        return data;
    }

    public static TheoryData<WeightType> Types() => new(KQuantReference.Types);

    [Fact]
    public void PackedScaleUnpackingMatchesGetScaleMinK4()
    {
        var rnd = new Random(11);
        var block = new byte[16]; // d and dmin, then the 12 packed bytes, as a super-block starts
        for (int trial = 0; trial < 5000; trial++)
        {
            rnd.NextBytes(block);
            if (trial == 0) Array.Fill(block, (byte)0xFF);
            var v = KQuant.ScalesMins(ref block[0]);
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = QuantMath.ScaleMinK4(j, ref block[4]);
                Assert.Equal(sc, v.GetElement(j));
                Assert.Equal(m, v.GetElement(8 + j));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void Q8KQuantizationGivesTheScalarTwinsBytes(Isa isa)
    {
        var rnd = new Random(Cases.Seed(8, (int)isa));
        // Ranges from subnormal (where 1/d overflows) to near float32's largest, an all-zero block, and lone spikes.
        float[] ranges = [0f, 1e-42f, 1e-38f, 1e-30f, 1e-3f, 1f, 127f, 1e10f, 3e38f];
        for (int trial = 0; trial < 200; trial++)
        {
            int blocks = 1 + rnd.Next(6);
            var x = new float[blocks * 256];
            for (int b = 0; b < blocks; b++)
            {
                float r = ranges[rnd.Next(ranges.Length)];
                for (int i = 0; i < 256; i++) x[b * 256 + i] = r * (2 * rnd.NextSingle() - 1);
                if (trial % 7 == 0) x[b * 256 + rnd.Next(256)] = -r;
                if (trial % 5 == 0)
                {
                    // max |x| = 127/16 makes d = 1/16 and 1/d = 16 exact, so (j + 0.5)/16 scales to an exact tie: ties to even.
                    for (int i = 0; i < 256; i++) x[b * 256 + i] = (rnd.Next(-127, 127) + 0.5f) / 16;
                    x[b * 256 + rnd.Next(256)] = 127f / 16;
                }
            }
            var expected = new byte[QuantizedActivations.ByteCount(ActivationFormat.Q8K, x.Length)];
            var actual = new byte[expected.Length];
            QuantizedActivations.QuantizeQ8KScalar(ref x[0], ref expected[0], blocks);
            QuantizedActivations.Quantize(ActivationFormat.Q8K, x, actual, isa);
            Assert.Equal(expected, actual);
            if (trial % 5 == 0)
                for (int i = 0; i < x.Length; i++)
                    Assert.Equal((sbyte)Math.Round(x[i] * 16.0, MidpointRounding.ToEven), (sbyte)actual[i / 256 * QuantizedActivations.Q8KBytes + QuantizedActivations.Q8KValues + i % 256]);
        }
    }

    [Theory]
    [MemberData(nameof(IsasAndTypes))]
    public void DotGivesTheScalarTwinsBits(Isa isa, WeightType type)
    {
        var rnd = new Random(Cases.Seed(1, (int)isa, (int)type));
        for (int blocks = 1; blocks <= 12; blocks++)
            for (int trial = 0; trial < 40; trial++)
            {
                var w = KQuantReference.RandomRow(rnd, type, blocks, wild: trial % 4 == 3);
                if (trial == 0) Array.Clear(w, 0, KQuantReference.BlockBytes(type));
                var (_, a) = KQuantReference.RandomActivations(rnd, blocks);
                float expected = KQuantReference.DotScalar(type, w, a, blocks);
                Check.SameValue(expected, KQuantReference.Dot(type, w, a, blocks, isa), $"{type} {isa}, {blocks} super-blocks, trial {trial}");
            }
    }

    [Theory]
    [MemberData(nameof(IsasAndTypes))]
    public void ExtremeValuesGiveTheScalarTwinsBits(Isa isa, WeightType type)
    {
        // All quants at their largest against activations at ±127 (the int16 and int32 limits the kernels rely on), and
        // every byte zero.
        int blocks = 3, bb = KQuantReference.BlockBytes(type);
        var x = new float[blocks * 256];
        foreach (float sign in new[] { 1f, -1f })
        {
            Array.Fill(x, sign);
            var a = new byte[QuantizedActivations.ByteCount(ActivationFormat.Q8K, x.Length)];
            QuantizedActivations.Quantize(ActivationFormat.Q8K, x, a, Isa.Scalar);
            foreach (byte fill in new byte[] { 0xFF, 0x00, 0x80 })
            {
                var w = new byte[blocks * bb];
                Array.Fill(w, fill);
                for (int b = 0; b < blocks; b++) BitConverter.TryWriteBytes(w.AsSpan(b * bb + (type == WeightType.Q6_K ? 208 : 0)), (ushort)0x3C00);
                Check.SameValue(KQuantReference.DotScalar(type, w, a, blocks), KQuantReference.Dot(type, w, a, blocks, isa), $"{type} {isa}, bytes 0x{fill:X2}, activations {sign}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(IsasAndTypes))]
    public void DotTokensGivesEachTokensDot(Isa isa, WeightType type)
    {
        var rnd = new Random(Cases.Seed(2, (int)isa, (int)type));
        Span<float> dst = stackalloc float[4];
        foreach (int blocks in new[] { 1, 2, 5, 12 })
            for (int tokens = 1; tokens <= 4; tokens++)
                for (int trial = 0; trial < 6; trial++)
                {
                    var w = KQuantReference.RandomRow(rnd, type, blocks, wild: false);
                    // Tokens further apart than one row of activations, so the stride is honoured, not assumed.
                    int rowBytes = blocks * QuantizedActivations.Q8KBytes, stride = rowBytes + 3 * trial;
                    var a = new byte[stride * (tokens - 1) + rowBytes];
                    for (int t = 0; t < tokens; t++) KQuantReference.RandomActivations(rnd, blocks).A.CopyTo(a, t * stride);
                    dst.Fill(float.NaN);
                    KQuantReference.DotTokens(type, w, a, stride, tokens, blocks, dst, isa);
                    for (int t = 0; t < tokens; t++)
                    {
                        var one = a.AsSpan(t * stride, rowBytes).ToArray();
                        Check.SameValue(KQuantReference.Dot(type, w, one, blocks, isa), dst[t], $"{type} {isa}, token {t} of {tokens}, {blocks} super-blocks");
                        Check.SameValue(KQuantReference.DotScalar(type, w, one, blocks), dst[t], $"{type} {isa} vs scalar twin, token {t} of {tokens}");
                    }
                    for (int t = tokens; t < 4; t++) Assert.True(float.IsNaN(dst[t]), $"DotTokens wrote result {t} of {tokens}");
                }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryKernelLayoutGivesTheScalarTwinsBitsOnAnyAvx2Cpu(WeightType type)
    {
        // The 256-bit kernels run quads (vpdpbusd) only where AVX-VNNI exists, the 512-bit ones only with AVX-512; forced
        // here, each layout's packing, shuffles and permutes run on any AVX2 CPU (quads then from their exact AVX2
        // equivalent, the 512-bit products and permutes from their portable forms).
        var rnd = new Random(Cases.Seed(5, (int)type));
        var dst = new float[4];
        if (!IsaSupport.IsSupported(Isa.Vector256))
        {
            // Without AVX2 (DOTNET_EnableHWIntrinsic=0) the kernels must refuse rather than compute something else.
            var w1 = KQuantReference.RandomRow(rnd, type, 1, wild: false);
            var a1 = KQuantReference.RandomActivations(rnd, 1).A;
            Assert.Throws<PlatformNotSupportedException>(() => RunForced(type, Kernel.Quads256, w1, a1, 0, 1, 1, dst));
            return;
        }
        for (int trial = 0; trial < 120; trial++)
        {
            int blocks = 1 + rnd.Next(12), tokens = 1 + trial % 4, rowBytes = blocks * QuantizedActivations.Q8KBytes;
            var w = KQuantReference.RandomRow(rnd, type, blocks, wild: trial % 3 == 2);
            var a = new byte[tokens * rowBytes];
            for (int t = 0; t < tokens; t++) KQuantReference.RandomActivations(rnd, blocks).A.CopyTo(a, t * rowBytes);
            foreach (var kernel in new[] { Kernel.Pairs256, Kernel.Quads256, Kernel.Portable512 })
            {
                Array.Fill(dst, float.NaN);
                RunForced(type, kernel, w, a, rowBytes, tokens, blocks, dst);
                for (int t = 0; t < tokens; t++)
                    Check.SameValue(KQuantReference.DotScalar(type, w, a.AsSpan(t * rowBytes, rowBytes).ToArray(), blocks), dst[t],
                        $"{type} {kernel}, token {t} of {tokens}, {blocks} super-blocks, trial {trial}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryFourRowLayoutGivesEachRowsScalarTwinBitsOnAnyAvx2Cpu(WeightType type)
    {
        // Decode's four-row kernel loads each chunk of activations once for four rows (Q4_K and Q5_K) or walks the rows one
        // by one (Q6_K, and any 512-bit kernel); forced, as above, so the quads' and 512-bit forms run on any AVX2 CPU.
        var rnd = new Random(Cases.Seed(6, (int)type));
        var dst = new float[4];
        if (!IsaSupport.IsSupported(Isa.Vector256))
        {
            var w1 = KQuantReference.RandomRow(rnd, type, 1, wild: false);
            var a1 = KQuantReference.RandomActivations(rnd, 1).A;
            Assert.Throws<PlatformNotSupportedException>(() => RunForced4Rows(type, Kernel.Quads256, [.. w1, .. w1, .. w1, .. w1], w1.Length, a1, 1, dst));
            return;
        }
        for (int trial = 0; trial < 60; trial++)
        {
            int blocks = 1 + rnd.Next(12), rowBytes = blocks * KQuantReference.BlockBytes(type);
            // Rows further apart than one row's bytes, so the stride is honoured, not assumed.
            nint stride = rowBytes + 7 * (trial % 3);
            var w = new byte[3 * stride + rowBytes];
            var rows = new byte[4][];
            for (int r = 0; r < 4; r++)
            {
                rows[r] = KQuantReference.RandomRow(rnd, type, blocks, wild: (trial + r) % 3 == 2);
                rows[r].CopyTo(w, r * stride);
            }
            var a = KQuantReference.RandomActivations(rnd, blocks).A;
            foreach (var kernel in new[] { Kernel.Pairs256, Kernel.Quads256, Kernel.Portable512 })
            {
                Array.Fill(dst, float.NaN);
                RunForced4Rows(type, kernel, w, stride, a, blocks, dst);
                for (int r = 0; r < 4; r++)
                    Check.SameValue(KQuantReference.DotScalar(type, rows[r], a, blocks), dst[r], $"{type} {kernel}, row {r}, {blocks} super-blocks, trial {trial}");
            }
        }
    }

    private static void RunForced4Rows(WeightType type, Kernel kernel, byte[] w, nint stride, byte[] a, int blocks, float[] dst)
    {
        ref byte wr = ref w[0];
        ref byte ar = ref a[0];
        ref float d = ref dst[0];
        switch (type, kernel)
        {
            case (WeightType.Q4_K, Kernel.Pairs256): KQuant.Run4Rows<ScaleMinKernels.V256<Q4KFormat, PairProducts>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (WeightType.Q4_K, Kernel.Quads256): KQuant.Run4Rows<ScaleMinKernels.V256<Q4KFormat, QuadProducts>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (WeightType.Q4_K, _): KQuant.Run4Rows<ScaleMinKernels.V512<Q4KFormat>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (WeightType.Q5_K, Kernel.Pairs256): KQuant.Run4Rows<ScaleMinKernels.V256<Q5KFormat, PairProducts>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (WeightType.Q5_K, Kernel.Quads256): KQuant.Run4Rows<ScaleMinKernels.V256<Q5KFormat, QuadProducts>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (WeightType.Q5_K, _): KQuant.Run4Rows<ScaleMinKernels.V512<Q5KFormat>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (_, Kernel.Pairs256): KQuant.Run4Rows<Q6KFormat.V256<PairProducts>>(ref wr, stride, ref ar, blocks, ref d); break;
            case (_, Kernel.Quads256): KQuant.Run4Rows<Q6KFormat.V256<QuadProducts>>(ref wr, stride, ref ar, blocks, ref d); break;
            default: KQuant.Run4Rows<Q6KFormat.V512>(ref wr, stride, ref ar, blocks, ref d); break;
        }
    }

    public enum Kernel { Pairs256, Quads256, Portable512 }

    private static void RunForced(WeightType type, Kernel kernel, byte[] w, byte[] a, nint stride, int tokens, int blocks, float[] dst)
    {
        ref byte wr = ref w[0];
        ref byte ar = ref a[0];
        ref float d = ref dst[0];
        switch (type, kernel)
        {
            case (WeightType.Q4_K, Kernel.Pairs256): KQuant.Run<ScaleMinKernels.V256<Q4KFormat, PairProducts>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (WeightType.Q4_K, Kernel.Quads256): KQuant.Run<ScaleMinKernels.V256<Q4KFormat, QuadProducts>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (WeightType.Q4_K, _): KQuant.Run<ScaleMinKernels.V512<Q4KFormat>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (WeightType.Q5_K, Kernel.Pairs256): KQuant.Run<ScaleMinKernels.V256<Q5KFormat, PairProducts>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (WeightType.Q5_K, Kernel.Quads256): KQuant.Run<ScaleMinKernels.V256<Q5KFormat, QuadProducts>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (WeightType.Q5_K, _): KQuant.Run<ScaleMinKernels.V512<Q5KFormat>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (_, Kernel.Pairs256): KQuant.Run<Q6KFormat.V256<PairProducts>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            case (_, Kernel.Quads256): KQuant.Run<Q6KFormat.V256<QuadProducts>>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
            default: KQuant.Run<Q6KFormat.V512>(ref wr, ref ar, stride, tokens, blocks, ref d); break;
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DotTokensRejectsCountsItCannotServe(WeightType type)
    {
        var w = new byte[KQuantReference.BlockBytes(type)];
        var a = new byte[QuantizedActivations.Q8KBytes];
        var dst = new float[4];
        Assert.Throws<ArgumentOutOfRangeException>(() => KQuantReference.DotTokens(type, w, a, 0, 0, 1, dst, IsaSupport.Best));
        Assert.Throws<ArgumentOutOfRangeException>(() => KQuantReference.DotTokens(type, w, a, 0, 5, 1, dst, IsaSupport.Best));
        Assert.Throws<ArgumentException>(() => KQuantReference.DotTokens(type, w, a, 0, 3, 1, dst.AsSpan(0, 2), IsaSupport.Best));
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DotIsWithinTheQuantizationBoundOfTheFloat64Dot(WeightType type)
    {
        var rnd = new Random(Cases.Seed(3, (int)type));
        for (int trial = 0; trial < 60; trial++)
        {
            int blocks = 1 + rnd.Next(12);
            var w = KQuantReference.RandomRow(rnd, type, blocks, wild: false);
            var (x, a) = KQuantReference.RandomActivations(rnd, blocks);
            double exact = 0, bound = 0, magnitude = 0;
            for (int b = 0; b < blocks; b++)
            {
                var y = KQuantReference.Decode(type, w, b);
                double da = BitConverter.ToSingle(a, b * QuantizedActivations.Q8KBytes);
                for (int i = 0; i < 256; i++)
                {
                    double wi = y[i].Scaled - y[i].Min, xi = x[256 * b + i];
                    exact += wi * xi;
                    // Rounding x to d_a·q is off by at most d_a/2 (plus the product x·(1/d_a)'s own rounding).
                    bound += Math.Abs(wi) * (da / 2 + Math.Abs(xi) * 4e-7);
                    magnitude += (Math.Abs(y[i].Scaled) + Math.Abs(y[i].Min)) * (Math.Abs(xi) + da);
                }
            }
            // Float32 steps: each of the 2 per super-block rounds d·d_a, the integer sum and the fma by 2^-24 relative.
            bound += magnitude * (1 + 2 * blocks) * 2 * Math.ScaleB(1, -24);
            Check.Close(exact, KQuantReference.DotScalar(type, w, a, blocks), bound, $"{type}, {blocks} super-blocks, trial {trial}");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DequantizationFollowsGgmlsLayout(WeightType type)
    {
        var rnd = new Random(Cases.Seed(4, (int)type));
        var got = new float[256];
        for (int trial = 0; trial < 100; trial++)
        {
            var w = KQuantReference.RandomRow(rnd, type, 1, wild: trial % 2 == 1);
            KQuantReference.DequantizeBlock(type, w, 0, got);
            var y = KQuantReference.Decode(type, w, 0);
            for (int i = 0; i < 256; i++)
            {
                // Float32 rounds d·sc, that times q, dmin·m and the difference: a few ulps of the larger part.
                double expected = y[i].Scaled - y[i].Min, size = Math.Max(Math.Abs(y[i].Scaled), Math.Abs(y[i].Min));
                Check.Close(expected, got[i], size * 4 * Math.ScaleB(1, -24) + 1e-45, $"{type} element {i}, trial {trial}");
            }
        }
    }
}
