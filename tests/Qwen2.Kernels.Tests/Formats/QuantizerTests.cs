namespace Qwen2.Kernels.Tests;

/// <summary>
/// The float32 → block quantizers (<see cref="WeightQuantizer"/>) against properties that follow from each format's
/// definition: values on the grid come back exactly, every value is within the format's error bound, all-zero and
/// constant rows, and an outlier spoils at most its own block. Dequantization is <see cref="WeightTypes.ToSingle"/>.
/// </summary>
public class QuantizerTests
{
    public static TheoryData<WeightType> Types => new()
    {
        WeightType.Q8_0, WeightType.Q4_0, WeightType.Q4_1, WeightType.Q5_0, WeightType.Q5_1, WeightType.Q4_K, WeightType.Q5_K, WeightType.Q6_K,
    };

    private static float[] RoundTrip(WeightType type, float[] x, out byte[] bytes)
    {
        bytes = new byte[WeightTypes.ByteCount(type, x.Length)];
        WeightQuantizer.Quantize(type, x, bytes);
        var y = new float[x.Length];
        WeightTypes.ToSingle(type, bytes, y);
        return y;
    }

    private static float[] Gaussian(Random r, int n, double sigma = 1)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));
        return x;
    }

    private static ushort Half(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    /// <summary>Random blocks whose values all lie on the format's grid, with the extreme levels present so the scale is recoverable.</summary>
    private static byte[] GridBlocks(WeightType type, Random r, int blocks)
    {
        int size = WeightTypes.BlockBytes(type);
        var b = new byte[blocks * size];
        for (int k = 0; k < blocks; k++)
        {
            var y = b.AsSpan(k * size, size);
            // Scales that are exact in binary16 and make every product exact in float32.
            float d = r.Next(1, 1000) / 1024f * (r.Next(2) == 0 ? 1 : -1);
            float m = r.Next(-500, 500) / 64f;
            switch (type)
            {
                case WeightType.Q8_0:
                    BitConverter.TryWriteBytes(y, Half(d));
                    for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)r.Next(-127, 128);
                    y[2 + r.Next(32)] = (byte)(sbyte)(r.Next(2) == 0 ? 127 : -127);
                    break;
                case WeightType.Q4_0 or WeightType.Q5_0:
                    BitConverter.TryWriteBytes(y, Half(d));
                    r.NextBytes(y[2..]);
                    int q0 = r.Next(32); // this element gets level 0, the value of largest magnitude
                    int off = type == WeightType.Q4_0 ? 2 : 6;
                    y[off + (q0 & 15)] &= (byte)(q0 < 16 ? 0xF0 : 0x0F);
                    if (type == WeightType.Q5_0) y[2 + q0 / 8] &= (byte)~(1 << (q0 % 8));
                    break;
                case WeightType.Q4_1 or WeightType.Q5_1:
                    BitConverter.TryWriteBytes(y, Half(Math.Abs(d)));
                    BitConverter.TryWriteBytes(y[2..], Half(m));
                    r.NextBytes(y[4..]);
                    int lo = r.Next(16), hi = 16 + r.Next(16); // level 0 and the top level both present
                    int noff = type == WeightType.Q4_1 ? 4 : 8;
                    y[noff + lo] &= 0xF0;
                    y[noff + (hi & 15)] |= 0xF0;
                    if (type == WeightType.Q5_1) { y[4 + lo / 8] &= (byte)~(1 << (lo % 8)); y[4 + hi / 8] |= (byte)(1 << (hi % 8)); }
                    break;
                case WeightType.Q6_K:
                    r.NextBytes(y[..192]);
                    for (int g = 0; g < 16; g++)
                    {
                        y[192 + g] = (byte)(sbyte)r.Next(-127, 128);
                        SetQ6Level(y, 16 * g + r.Next(16), 0); // each group holds its value of largest magnitude
                    }
                    y[192 + r.Next(16)] = unchecked((byte)-128); // the super-block's largest scale
                    BitConverter.TryWriteBytes(y[208..], Half(d / 64));
                    break;
                default: // Q4_K, Q5_K
                    BitConverter.TryWriteBytes(y, Half(Math.Abs(d) / 64));
                    BitConverter.TryWriteBytes(y[2..], Half(Math.Abs(m) / 64 + 1 / 64f));
                    r.NextBytes(y[4..]);
                    // Scales and minimums 63 in sub-block 0 (both maxima are then recoverable), others random.
                    y[4] = (byte)(y[4] | 63); y[8] = (byte)(y[8] | 63);
                    for (int sb = 0; sb < 8; sb++)
                    {
                        // Each sub-block holds its bottom and top level, so its minimum and scale are recoverable.
                        SetKLevel(type, y, 32 * sb + r.Next(16), 0);
                        SetKLevel(type, y, 32 * sb + 16 + r.Next(16), type == WeightType.Q4_K ? 15 : 31);
                    }
                    break;
            }
        }
        return b;
    }

    private static void SetKLevel(WeightType type, Span<byte> y, int e, int q)
    {
        int s = e >> 5, l = e & 31, at = (type == WeightType.Q4_K ? 16 : 48) + 32 * (s >> 1) + l;
        y[at] = (s & 1) == 0 ? (byte)((y[at] & 0xF0) | (q & 0xF)) : (byte)((y[at] & 0x0F) | ((q & 0xF) << 4));
        if (type == WeightType.Q5_K) y[16 + l] = (byte)((y[16 + l] & ~(1 << s)) | ((q >> 4) << s));
    }

    private static void SetQ6Level(Span<byte> y, int e, int q)
    {
        int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
        ref byte low = ref y[64 * h + l + 32 * (k & 1)];
        low = k < 2 ? (byte)((low & 0xF0) | (q & 0xF)) : (byte)((low & 0x0F) | ((q & 0xF) << 4));
        ref byte high = ref y[128 + 32 * h + l];
        high = (byte)((high & ~(3 << (2 * k))) | ((q >> 4) << (2 * k)));
    }

    [Theory, MemberData(nameof(Types))]
    public void ValuesOnTheGridComeBack(WeightType type)
    {
        var r = new Random(11 + (int)type);
        int blocks = 64;
        var grid = GridBlocks(type, r, blocks);
        var x = new float[blocks * WeightTypes.BlockSize(type)];
        WeightTypes.ToSingle(type, grid, x);
        var y = RoundTrip(type, x, out _);
        double scale = x.Max(v => Math.Abs(v));
        // 32-element formats come back bit for bit; the K-quants' least-squares fits in float32 may move a value by an ulp or so.
        double tol = type is WeightType.Q4_K or WeightType.Q5_K or WeightType.Q6_K ? scale * 1e-5 : 0;
        for (int i = 0; i < x.Length; i++)
            Assert.True(Math.Abs(x[i] - y[i]) <= tol, $"{type} element {i}: {x[i]} came back as {y[i]}");
    }

    /// <summary>The largest error each format allows for a block (or sub-block) of values <paramref name="x"/>.</summary>
    private static double Bound(WeightType type, ReadOnlySpan<float> x)
    {
        double amax = 0, min = double.MaxValue, max = double.MinValue;
        foreach (float v in x) { amax = Math.Max(amax, Math.Abs(v)); min = Math.Min(min, v); max = Math.Max(max, v); }
        const double h = 1.0 / 2048; // binary16 rounding of a scale, relative
        // ... and absolute where the scale is subnormal, times the largest level (scale × level) product.
        double sub = Math.ScaleB(1, -25) * (type switch
        {
            WeightType.Q8_0 => 127, WeightType.Q4_0 => 8, WeightType.Q5_0 => 16, WeightType.Q4_1 => 16, WeightType.Q5_1 => 32,
            WeightType.Q4_K => 63 * 16, WeightType.Q5_K => 63 * 32, _ => 128 * 32,
        });
        return sub + type switch
        {
            // d = amax/127, half a step plus the scale's rounding over 127 steps
            WeightType.Q8_0 => amax / 127 * (0.5 + 127 * h),
            // d = amax/8 (or /16) toward the largest value; the opposite end clamps at 7 (15): up to one step
            WeightType.Q4_0 => amax / 8 * (1 + 8 * h),
            WeightType.Q5_0 => amax / 16 * (1 + 16 * h),
            // d = range/15 (or /31) from the minimum: half a step plus the rounding of d and of the minimum
            WeightType.Q4_1 => (max - min) / 15 * (0.5 + 15 * h) + Math.Abs(min) * h,
            WeightType.Q5_1 => (max - min) / 31 * (0.5 + 31 * h) + Math.Abs(min) * h,
            // K-quants: within one step of the sub-block's own range (its scale is itself quantized to 6 or 8 bits)
            WeightType.Q4_K => (max - Math.Min(min, 0)) / 15,
            WeightType.Q5_K => (max - Math.Min(min, 0)) / 31,
            _ => amax / 31, // Q6_K
        };
    }

    private static int BoundGroup(WeightType type) => type switch
    {
        WeightType.Q4_K or WeightType.Q5_K => 32,
        WeightType.Q6_K => 16,
        _ => 32,
    };

    [Theory, MemberData(nameof(Types))]
    public void ErrorsStayWithinTheFormatsBound(WeightType type)
    {
        var r = new Random(7 + (int)type);
        foreach (double sigma in new[] { 1e-3, 0.02, 1.0, 300.0 })
        {
            var x = Gaussian(r, 4096, sigma);
            var y = RoundTrip(type, x, out _);
            int g = BoundGroup(type);
            for (int s = 0; s < x.Length; s += g)
            {
                double bound = Bound(type, x.AsSpan(s, g)) * (1 + 1e-6);
                for (int i = s; i < s + g; i++)
                    Assert.True(Math.Abs(x[i] - y[i]) <= bound, $"{type} σ {sigma} element {i}: error {Math.Abs(x[i] - y[i])} > bound {bound}");
            }
        }
    }

    [Theory, MemberData(nameof(Types))]
    public void AllZeroRowsGiveZeroScalesAndValues(WeightType type)
    {
        var x = new float[512];
        var y = RoundTrip(type, x, out var bytes);
        Assert.All(y, v => Assert.Equal(0f, v));
        // Scales (binary16 d) are zero: every block's d field.
        int size = WeightTypes.BlockBytes(type), dAt = type == WeightType.Q6_K ? 208 : 0;
        for (int b = 0; b < bytes.Length / size; b++) Assert.Equal(0, BitConverter.ToUInt16(bytes, b * size + dAt) & 0x7FFF);
    }

    [Theory, MemberData(nameof(Types))]
    public void ConstantRowsComeBackWithinTheScalesRounding(WeightType type)
    {
        foreach (float c in new[] { 0.37f, -0.37f, 0.05f, -12.5f, 1000f })
        {
            var x = Enumerable.Repeat(c, 512).ToArray();
            var y = RoundTrip(type, x, out _);
            for (int i = 0; i < x.Length; i++)
                Assert.True(Math.Abs(y[i] - c) <= Math.Abs(c) / 512, $"{type} constant {c}: element {i} came back as {y[i]}");
        }
    }

    [Theory, MemberData(nameof(Types))]
    public void AnOutlierSpoilsOnlyItsOwnBlock(WeightType type)
    {
        var r = new Random(3 + (int)type);
        var x = Gaussian(r, 2048, 0.05);
        int at = 700;
        x[at] = 1000f;
        var y = RoundTrip(type, x, out _);
        Assert.True(Math.Abs(y[at] - x[at]) <= 1000f / 100, $"{type}: the outlier 1000 came back as {y[at]}");
        int block = WeightTypes.BlockSize(type), g = BoundGroup(type);
        for (int s = 0; s < x.Length; s += g)
        {
            if (s / block == at / block) continue; // the outlier's own (super-)block may lose its small values
            double bound = Bound(type, x.AsSpan(s, g)) * (1 + 1e-6);
            for (int i = s; i < s + g; i++)
                Assert.True(Math.Abs(x[i] - y[i]) <= bound, $"{type} element {i} outside the outlier's block: error {Math.Abs(x[i] - y[i])} > {bound}");
        }
    }

    [Fact]
    public void RejectsNonFiniteValuesAndPartialBlocks()
    {
        var x = new float[256];
        x[77] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => WeightQuantizer.Quantize(WeightType.Q4_K, x, new byte[144]));
        Assert.Contains("value 77", e.Message);
        Assert.Throws<ArgumentException>(() => WeightQuantizer.Quantize(WeightType.Q8_0, new float[40], new byte[100]));
        Assert.Throws<ArgumentException>(() => WeightQuantizer.Quantize(WeightType.Q8_0, new float[32], new byte[33]));
        Assert.Throws<ArgumentException>(() => WeightQuantizer.Quantize(WeightType.F16, new float[32], new byte[64]));
    }
}
