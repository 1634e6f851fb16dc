namespace Qwen2.Kernels.Tests;

/// <summary>
/// What the parity table (<see cref="KernelParityTests"/>) does not cover: argument checks, aliasing, RoPE's identity at
/// position 0 and its frequencies, softmax's and argmax's special values; each on the path it forced.
/// </summary>
public class ElementwiseTests
{
    // ---- RmsNorm ----

    [Fact]
    public void RmsNormRejectsShortBuffers()
    {
        Assert.Throws<ArgumentException>(() => RmsNorm.Apply(new float[7], new float[4], 1e-6f, new float[8], 2));
        Assert.Throws<ArgumentException>(() => RmsNorm.Apply(new float[8], new float[4], 1e-6f, new float[7], 2));
    }

    // ---- Rope ----

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
        Paths.Forced(isa, "Rope.Apply", () => Rope.Apply(x, 2, HeadDim, cos, sin, isa));
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

    [Theory]
    [MemberData(nameof(Cases.IsasAndSizes), MemberType = typeof(Cases))]
    public void SiluMulOutputMayAliasEitherInput(Isa isa, int n)
    {
        var rnd = new Random(Cases.Seed(5, (int)isa, n));
        var g = KernelParityTests.Gates(rnd, n);
        var u = Cases.Uniform(rnd, n, -3, 3);
        var expected = new float[n];
        Paths.Forced(isa, "SiluMul", () => Activations.SiluMul(g, u, expected, isa));

        var gy = (float[])g.Clone();
        Paths.Forced(isa, "SiluMul aliasing gate", () => Activations.SiluMul(gy, u, gy, isa));
        Check.BitsEqual(expected, gy, $"{isa} y aliasing gate");

        var uy = (float[])u.Clone();
        Paths.Forced(isa, "SiluMul aliasing up", () => Activations.SiluMul(g, uy, uy, isa));
        Check.BitsEqual(expected, uy, $"{isa} y aliasing up");
    }

    /// <summary>
    /// Long spans split over a pool (chunks of whole vector steps, the tail in the last) give the single call's bits,
    /// for lengths around the chunk size and with the output aliasing an input, as the forward pass calls them.
    /// </summary>
    [Fact]
    public void SiluMulAndAddOverAPoolGiveTheSingleCallsBits()
    {
        using var pool = new WorkerPool(3);
        foreach (var isa in IsaSupport.Supported)
            foreach (int n in new[] { 100, 8191, 8192, 8193, 3 * 4096 + 5, 64 * 4864 + 3 })
            {
                var rnd = new Random(Cases.Seed(6, (int)isa, n));
                var g = KernelParityTests.Gates(rnd, n);
                var u = Cases.Uniform(rnd, n, -3, 3);
                var silu = new float[n];
                Activations.SiluMul(g, u, silu, isa);
                var gy = (float[])g.Clone();
                Paths.Forced(isa, "SiluMul over a pool", () => Activations.SiluMul(gy, u, gy, isa, pool));
                Check.BitsEqual(silu, gy, $"{isa} SiluMul of {n} over a pool");
                var sum = new float[n];
                Elementwise.Add(g, u, sum, isa);
                var uy = (float[])u.Clone();
                Paths.Forced(isa, "Add over a pool", () => Elementwise.Add(g, uy, uy, isa, pool));
                Check.BitsEqual(sum, uy, $"{isa} Add of {n} over a pool");
            }
        Assert.Throws<ArgumentException>(() => Activations.SiluMul(new float[9000], new float[9001], new float[9000], pool: pool));
    }

    [Fact]
    public void SiluMulRejectsMismatchedLengths()
    {
        Assert.Throws<ArgumentException>(() => Activations.SiluMul(new float[4], new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => Activations.SiluMul(new float[4], new float[4], new float[5]));
    }

    // ---- Softmax ----

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void SoftmaxSmallCases(Isa isa)
    {
        float[] one = [-123.5f];
        Paths.Forced(isa, "Softmax of one", () => Activations.Softmax(one, isa));
        Assert.Equal(1f, one[0]);

        float[] masked = [float.NegativeInfinity, 2.5f, float.NegativeInfinity];
        Paths.Forced(isa, "Softmax masked", () => Activations.Softmax(masked, isa));
        Assert.Equal(new[] { 0f, 1f, 0f }, masked);

        float[] even = [4f, 4f, 4f, 4f];
        Paths.Forced(isa, "Softmax even", () => Activations.Softmax(even, isa));
        Assert.All(even, v => Assert.Equal(0.25f, v));

        Paths.Forced(isa, "Softmax empty", () => Activations.Softmax(Span<float>.Empty, isa)); // nothing to do, no throw
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
            Assert.Equal(at, Paths.Forced(isa, "ArgMax", () => Activations.ArgMax(x, isa)));
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
            Assert.Equal(expected, Paths.Forced(isa, "ArgMax with NaNs", () => Activations.ArgMax(x, isa)));
            Assert.Equal(expected, Paths.Forced(Isa.Scalar, "ArgMax with NaNs, scalar", () => Activations.ArgMax(x, Isa.Scalar)));
        }

        var inf = new float[n];
        inf.AsSpan().Fill(float.NegativeInfinity);
        Assert.Equal(0, Paths.Forced(isa, "ArgMax of -inf", () => Activations.ArgMax(inf, isa)));
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void ArgMaxSpecialValues(Isa isa)
    {
        Assert.Equal(2, Paths.Forced(isa, "ArgMax special", () => Activations.ArgMax([float.NaN, 1f, 3f, float.NaN, 3f], isa)));
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
