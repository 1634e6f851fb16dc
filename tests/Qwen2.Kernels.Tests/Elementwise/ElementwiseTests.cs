namespace Qwen2.Kernels.Tests;

/// <summary>RmsNorm, Rope, SiluMul, Softmax and ArgMax on every supported path, against their scalar twins and double references.</summary>
public class ElementwiseTests
{
    // ---- RmsNorm ----

    [Theory]
    [MemberData(nameof(Cases.IsasAndSizes), MemberType = typeof(Cases))]
    public void RmsNormMatchesScalarAndDoubleReference(Isa isa, int d)
    {
        const int Rows = 3;
        const float Eps = 1e-6f;
        var rnd = new Random(Cases.Seed(1, (int)isa, d));
        var x = Cases.Uniform(rnd, Rows * d, -2, 2);
        x.AsSpan(d, d).Clear(); // an all-zero row: y = 0 · 1/√eps · w, not NaN
        var w = Cases.Uniform(rnd, d, 0.5f, 1.5f);
        var y = new float[Rows * d];
        var twin = new float[Rows * d];
        RmsNorm.Apply(x, w, Eps, y, Rows, isa);
        RmsNorm.Apply(x, w, Eps, twin, Rows, Isa.Scalar);
        for (int r = 0; r < Rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)x[r * d + i] * x[r * d + i];
            double inv = 1 / Math.Sqrt(ss / d + Eps);
            for (int i = 0; i < d; i++)
            {
                int k = r * d + i;
                double exact = x[k] * inv * w[i];
                double tol = 1e-5 * Math.Abs(exact) + 1e-30;
                Check.Close(exact, y[k], tol, $"{isa} RmsNorm d={d} [{r},{i}]");
                Check.Close(exact, twin[k], tol, $"scalar RmsNorm d={d} [{r},{i}]");
                Check.Close(twin[k], y[k], tol, $"{isa} vs scalar RmsNorm d={d} [{r},{i}]");
            }
        }
        Assert.All(y.AsSpan(d, d).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void RmsNormRejectsShortBuffers()
    {
        Assert.Throws<ArgumentException>(() => RmsNorm.Apply(new float[7], new float[4], 1e-6f, new float[8], 2));
        Assert.Throws<ArgumentException>(() => RmsNorm.Apply(new float[8], new float[4], 1e-6f, new float[7], 2));
    }

    // ---- Rope ----

    public static TheoryData<Isa, int> IsasAndHeadDims()
    {
        var data = new TheoryData<Isa, int>();
        foreach (var isa in IsaSupport.Supported)
            foreach (int half in Cases.AwkwardSizes.Where(n => n < 100).Concat([32, 64]))
                data.Add(isa, 2 * half); // halves 1, 7, 17, 63, 65, 32, 64 cover every vector width and tail
        return data;
    }

    [Theory]
    [MemberData(nameof(IsasAndHeadDims))]
    public void RopeApplyMatchesScalarAndDoubleReference(Isa isa, int headDim)
    {
        const int Heads = 3;
        int half = headDim / 2;
        var rnd = new Random(Cases.Seed(2, (int)isa, headDim));
        var inv = Rope.InverseFrequencies(headDim, 1_000_000);
        var cos = new float[half];
        var sin = new float[half];
        Rope.Angles(37, inv, cos, sin);
        var x0 = Cases.Uniform(rnd, Heads * headDim + 3, -3, 3); // 3 trailing floats must stay untouched
        var x = (float[])x0.Clone();
        var twin = (float[])x0.Clone();
        Rope.Apply(x, Heads, headDim, cos, sin, isa);
        Rope.Apply(twin, Heads, headDim, cos, sin, Isa.Scalar);
        for (int h = 0; h < Heads; h++)
            for (int j = 0; j < half; j++)
            {
                int i1 = h * headDim + j, i2 = i1 + half;
                double a = x0[i1], b = x0[i2], c = cos[j], s = sin[j];
                // Each output is two rounded products and a rounded sum of terms no larger than |a| + |b| (|c|, |s| ≤ 1).
                double tol = 1e-6 * (Math.Abs(a) + Math.Abs(b)) + 1e-30;
                string at = $"{isa} Rope d={headDim} head {h} j {j}";
                Check.Close(a * c - b * s, x[i1], tol, at + " first half");
                Check.Close(b * c + a * s, x[i2], tol, at + " second half");
                Check.Close(twin[i1], x[i1], tol, at + " first half vs scalar");
                Check.Close(twin[i2], x[i2], tol, at + " second half vs scalar");
            }
        Check.BitsEqual(x0.AsSpan(Heads * headDim), x.AsSpan(Heads * headDim), "floats after the heads");
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void RopeAtPositionZeroIsTheIdentity(Isa isa)
    {
        const int HeadDim = 128;
        var inv = Rope.InverseFrequencies(HeadDim, 10_000);
        var cos = new float[HeadDim / 2];
        var sin = new float[HeadDim / 2];
        Rope.Angles(0, inv, cos, sin);
        Assert.All(cos, c => Assert.Equal(1f, c));
        Assert.All(sin, s => Assert.Equal(0f, s));
        var x0 = Cases.Uniform(new Random(3), 2 * HeadDim, -1, 1);
        var x = (float[])x0.Clone();
        Rope.Apply(x, 2, HeadDim, cos, sin, isa);
        Check.BitsEqual(x0, x, $"{isa} rope at position 0");
    }

    [Theory]
    [InlineData(2, 10_000.0)]
    [InlineData(14, 10_000.0)]
    [InlineData(64, 1_000_000.0)]
    [InlineData(128, 10_000.0)]
    [InlineData(128, 1_000_000.0)]
    public void InverseFrequenciesMatchDoubleFormula(int headDim, double theta)
    {
        var inv = Rope.InverseFrequencies(headDim, theta);
        Assert.Equal(headDim / 2, inv.Length);
        Assert.Equal(1f, inv[0]);
        for (int j = 0; j < inv.Length; j++)
        {
            double exact = 1 / Math.Pow(theta, 2.0 * j / headDim);
            Check.Close(exact, inv[j], 1e-6 * exact, $"invFreq[{j}] d={headDim} theta={theta}");
            if (j > 0) Assert.True(inv[j] < inv[j - 1], "inverse frequencies decrease");
        }
    }

    [Fact]
    public void InverseFrequenciesRejectBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.InverseFrequencies(0, 10_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.InverseFrequencies(7, 10_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.InverseFrequencies(64, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.InverseFrequencies(64, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.InverseFrequencies(64, double.PositiveInfinity));
        Assert.Throws<ArgumentException>(() => Rope.Apply(new float[14], 1, 7, new float[4], new float[4]));
        Assert.Throws<ArgumentException>(() => Rope.Apply(new float[8], 1, 8, new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => Rope.Apply(new float[15], 2, 8, new float[4], new float[4]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(4095)]
    [InlineData(32767)]
    public void AnglesAreCosAndSinOfTheFloat32Angle(int position)
    {
        var inv = Rope.InverseFrequencies(64, 1_000_000);
        var cos = new float[32];
        var sin = new float[32];
        Rope.Angles(position, inv, cos, sin);
        for (int j = 0; j < 32; j++)
        {
            // position · invFreq is exact in double (15 + 24 bits); rounding it to float32 is what the reference does.
            double angle = (float)((double)position * inv[j]);
            Check.Close(Math.Cos(angle), cos[j], 2e-7, $"cos pos {position} j {j}");
            Check.Close(Math.Sin(angle), sin[j], 2e-7, $"sin pos {position} j {j}");
        }
    }

    // ---- SiluMul ----

    private static float[] Gates(Random rnd, int n)
    {
        var g = Cases.Uniform(rnd, n, -12, 12);
        float[] special = [0f, -0f, 100f, -100f, 87f, -87f, 20f, -20f];
        for (int i = 0; i < Math.Min(n, special.Length); i++) g[(i * 13) % n] = special[i];
        return g;
    }

    [Theory]
    [MemberData(nameof(Cases.IsasAndSizes), MemberType = typeof(Cases))]
    public void SiluMulMatchesScalarAndDoubleReference(Isa isa, int n)
    {
        var rnd = new Random(Cases.Seed(4, (int)isa, n));
        var g = Gates(rnd, n);
        var u = Cases.Uniform(rnd, n, -3, 3);
        var y = new float[n];
        var twin = new float[n];
        Activations.SiluMul(g, u, y, isa);
        Activations.SiluMul(g, u, twin, Isa.Scalar);
        for (int i = 0; i < n; i++)
        {
            double exact = g[i] / (1 + Math.Exp(-(double)g[i])) * u[i];
            double tol = 2e-6 * Math.Abs(exact) + 1e-30;
            Check.Close(exact, y[i], tol, $"{isa} SiluMul n={n} [{i}] g={g[i]} u={u[i]}");
            Check.Close(exact, twin[i], tol, $"scalar SiluMul n={n} [{i}] g={g[i]} u={u[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases.IsasAndSizes), MemberType = typeof(Cases))]
    public void SiluMulOutputMayAliasEitherInput(Isa isa, int n)
    {
        var rnd = new Random(Cases.Seed(5, (int)isa, n));
        var g = Gates(rnd, n);
        var u = Cases.Uniform(rnd, n, -3, 3);
        var expected = new float[n];
        Activations.SiluMul(g, u, expected, isa);

        var gy = (float[])g.Clone();
        Activations.SiluMul(gy, u, gy, isa);
        Check.BitsEqual(expected, gy, $"{isa} y aliasing gate");

        var uy = (float[])u.Clone();
        Activations.SiluMul(g, uy, uy, isa);
        Check.BitsEqual(expected, uy, $"{isa} y aliasing up");
    }

    [Fact]
    public void SiluMulRejectsMismatchedLengths()
    {
        Assert.Throws<ArgumentException>(() => Activations.SiluMul(new float[4], new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => Activations.SiluMul(new float[4], new float[4], new float[5]));
    }

    // ---- Softmax ----

    private static double[] SoftmaxReference(float[] x)
    {
        double max = double.NegativeInfinity;
        foreach (float v in x) max = Math.Max(max, v);
        var e = x.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    [Theory]
    [MemberData(nameof(Cases.IsasAndSizes), MemberType = typeof(Cases))]
    public void SoftmaxMatchesScalarAndDoubleReference(Isa isa, int n)
    {
        var rnd = new Random(Cases.Seed(6, (int)isa, n));
        var x0 = Cases.Uniform(rnd, n, -10, 10);
        if (n > 1)
            for (int i = 3; i < n; i += 5) x0[i] = float.NegativeInfinity; // masked entries, the last included for n = 63 and 896
        var exact = SoftmaxReference(x0);
        var x = (float[])x0.Clone();
        var twin = (float[])x0.Clone();
        Activations.Softmax(x, isa);
        Activations.Softmax(twin, Isa.Scalar);
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            sum += x[i];
            if (float.IsNegativeInfinity(x0[i]))
            {
                Assert.Equal(0u, BitConverter.SingleToUInt32Bits(x[i]));
                Assert.Equal(0u, BitConverter.SingleToUInt32Bits(twin[i]));
                continue;
            }
            double tol = 1e-5 * exact[i] + 1e-30;
            Check.Close(exact[i], x[i], tol, $"{isa} Softmax n={n} [{i}]");
            Check.Close(exact[i], twin[i], tol, $"scalar Softmax n={n} [{i}]");
        }
        Check.Close(1, sum, 1e-5, $"{isa} Softmax n={n} sums to one");
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void SoftmaxSmallCases(Isa isa)
    {
        float[] one = [-123.5f];
        Activations.Softmax(one, isa);
        Assert.Equal(1f, one[0]);

        float[] masked = [float.NegativeInfinity, 2.5f, float.NegativeInfinity];
        Activations.Softmax(masked, isa);
        Assert.Equal(new[] { 0f, 1f, 0f }, masked);

        float[] even = [4f, 4f, 4f, 4f];
        Activations.Softmax(even, isa);
        Assert.All(even, v => Assert.Equal(0.25f, v));

        Activations.Softmax(Span<float>.Empty, isa); // nothing to do, no throw
    }

    // ---- ArgMax ----

    /// <summary>First index of the largest non-NaN entry.</summary>
    private static int ArgMaxReference(float[] x)
    {
        int best = -1;
        for (int i = 0; i < x.Length; i++)
            if (!float.IsNaN(x[i]) && (best < 0 || x[i] > x[best])) best = i;
        return best;
    }

    [Theory]
    [MemberData(nameof(Cases.IsasAndSizes), MemberType = typeof(Cases))]
    public void ArgMaxFindsTheFirstLargest(Isa isa, int n)
    {
        var rnd = new Random(Cases.Seed(7, (int)isa, n));
        // Where the maximum sits: first, last, in a vector tail, mid-vector; and a tie planted after it.
        foreach (int at in new[] { 0, n - 1, n / 2, Math.Max(0, n - 2), Math.Min(n - 1, 17) }.Distinct())
        {
            var x = Cases.Uniform(rnd, n, -5, 5);
            x[at] = 7;
            if (at + 1 < n) x[n - 1] = 7; // a tie after it
            Assert.Equal(at, Activations.ArgMax(x, isa));
            Assert.Equal(ArgMaxReference(x), Activations.ArgMax(x, isa));

            for (int i = 0; i < n; i++) x[i] = -Math.Abs(x[i]) - 1; // all negative
            x[at] = -0.5f;
            Assert.Equal(at, Activations.ArgMax(x, isa));

            for (int i = 0; i < n; i += 2) x[i] = float.NaN; // NaN is never chosen
            if (n == 1)
            {
                Assert.Throws<ArgumentException>(() => Activations.ArgMax(x, isa)); // nothing but NaN
                continue;
            }
            int expected = ArgMaxReference(x);
            Assert.True(expected % 2 == 1);
            Assert.Equal(expected, Activations.ArgMax(x, isa));
            Assert.Equal(expected, Activations.ArgMax(x, Isa.Scalar));
        }

        var inf = new float[n];
        inf.AsSpan().Fill(float.NegativeInfinity);
        Assert.Equal(0, Activations.ArgMax(inf, isa));
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void ArgMaxSpecialValues(Isa isa)
    {
        Assert.Equal(2, Activations.ArgMax([float.NaN, 1f, 3f, float.NaN, 3f], isa));
        Assert.Equal(1, Activations.ArgMax([float.NaN, float.NegativeInfinity, float.NaN], isa));
        Assert.Equal(3, Activations.ArgMax([-3f, -2f, -7f, -1f, -1f], isa));
        Assert.Equal(2, Activations.ArgMax([float.MaxValue, 0f, float.PositiveInfinity, float.PositiveInfinity], isa));
        Assert.Equal(0, Activations.ArgMax([-0f, 0f], isa)); // equal values: the first
        Assert.Equal(0, Activations.ArgMax([5f], isa));
        Assert.Equal(0, Activations.ArgMax([float.NegativeInfinity], isa));
        Assert.Throws<ArgumentException>(() => Activations.ArgMax([float.NaN, float.NaN], isa));
        Assert.Throws<ArgumentException>(() => Activations.ArgMax(ReadOnlySpan<float>.Empty, isa));
    }
}
