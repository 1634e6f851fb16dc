namespace Qwen2.Kernels.Tests;

/// <summary>
/// MatMul beyond the parity table (<see cref="KernelParityTests"/>, which holds every path to the scalar twin and a double
/// reference): exact integer products, one fixed summation order per output element, fused products, argument checks.
/// </summary>
public class MatMulTests
{
    private static readonly WeightType[] Types = [WeightType.F32, WeightType.BF16, WeightType.F16];

    public static TheoryData<Isa, WeightType> IsaType()
    {
        var data = new TheoryData<Isa, WeightType>();
        foreach (var isa in IsaSupport.Supported)
            foreach (var type in Types) data.Add(isa, type);
        return data;
    }

    /// <summary>Small integers make every product and partial sum exact in float32, so every path must hit the exact sum.</summary>
    [Theory]
    [MemberData(nameof(IsaType))]
    public void IntegerProductsAreExactOnEveryPath(Isa isa, WeightType type)
    {
        var rnd = new Random(Cases.Seed(7, (int)isa, (int)type));
        const int Rows = 7, Tokens = 3;
        foreach (int cols in Cases.AwkwardSizes)
        {
            var m = TestMatrix.Create(Rows, cols, type, (_, _) => rnd.Next(-8, 9));
            var x = new float[Tokens * cols];
            for (int i = 0; i < x.Length; i++) x[i] = rnd.Next(-8, 9);
            var y = new float[Tokens * Rows];
            Paths.Forced(isa, $"Multiply integers {type} cols={cols}", () => MatMul.Multiply(m.View, x, y, Tokens, null, isa));
            for (int t = 0; t < Tokens; t++)
                for (int r = 0; r < Rows; r++)
                    Assert.Equal(m.Reference(x, t, r).Sum, (double)y[t * Rows + r]);
        }
    }

    [Fact]
    public void DefaultIsaIsBest()
    {
        var rnd = new Random(3);
        var m = TestMatrix.Random(rnd, 9, 65, WeightType.BF16);
        var x = Cases.Uniform(rnd, 2 * 65, -1, 1);
        var a = new float[2 * 9];
        var b = new float[2 * 9];
        Paths.Forced(IsaSupport.Best, "Multiply with no isa", () => MatMul.Multiply(m.View, x, a, 2));
        MatMul.Multiply(m.View, x, b, 2, null, IsaSupport.Best);
        Check.BitsEqual(b, a, "isa null vs IsaSupport.Best");
        Assert.Equal(IsaSupport.Supported[^1], IsaSupport.Best);
        Assert.Equal(Isa.Scalar, IsaSupport.Supported[0]);
    }

    [Fact]
    public void UnsupportedIsaThrowsAndSupportedDoesNot()
    {
        var m = TestMatrix.Random(new Random(4), 4, 8, WeightType.F32);
        var x = new float[8];
        var y = new float[4];
        foreach (var isa in Enum.GetValues<Isa>())
        {
            if (IsaSupport.IsSupported(isa))
            {
                Assert.Contains(isa, IsaSupport.Supported);
                Paths.Forced(isa, "Multiply", () => MatMul.Multiply(m.View, x, y, 1, null, isa));
            }
            else
            {
                Assert.DoesNotContain(isa, IsaSupport.Supported);
                Assert.Throws<PlatformNotSupportedException>(() => MatMul.Multiply(m.View, x, y, 1, null, isa));
            }
        }
    }

    [Fact]
    public void ShortBuffersAreRejected()
    {
        var m = TestMatrix.Random(new Random(5), 4, 8, WeightType.F16);
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(m.View, new float[15], new float[8], 2));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(m.View, new float[16], new float[7], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Multiply(m.View, new float[16], new float[8], -1));
        Assert.Throws<ArgumentException>(() => MatMul.Dot(new byte[15], WeightType.F16, new float[8]));
    }

    public static TheoryData<Isa, WeightType, int, int, int> IsaAndShapes()
    {
        var data = new TheoryData<Isa, WeightType, int, int, int>();
        foreach (var isa in IsaSupport.Supported)
            foreach (var type in new[] { WeightType.BF16, WeightType.F16, WeightType.F32 })
            {
                data.Add(isa, type, 4864, 896, 5);  // Qwen2-0.5B gate/up projection: full blocks; one 4-token tile and one token left
                data.Add(isa, type, 1001, 903, 9);  // a partial block of one row, a vector tail of seven columns, two tiles and one left
                data.Add(isa, type, 6, 33, 8);      // fewer rows than four streams per thread need, tiles only
                data.Add(isa, type, 1001, 903, 21); // many tokens: streamed (BF16, F32) or widened once (F16), tiles and one left
            }
        return data;
    }

    /// <summary>
    /// One fixed summation order per element: any thread count (or none), and computing a token alone or inside a
    /// batch, give the same bits.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsaAndShapes))]
    public void BitIdenticalAcrossThreadCountsAndTokenCounts(Isa isa, WeightType type, int rows, int cols, int tokens)
    {
        var rnd = new Random(Cases.Seed(13, (int)isa, rows, cols));
        var m = TestMatrix.Random(rnd, rows, cols, type);
        var x = Cases.Uniform(rnd, tokens * cols, -1, 1);

        var batch = new float[tokens * rows];
        Paths.Forced(isa, $"Multiply {type} {rows}x{cols} tokens={tokens}", () => MatMul.Multiply(m.View, x, batch, tokens, null, isa));
        for (int t = 0; t < tokens; t++)
        {
            var alone = new float[rows];
            MatMul.Multiply(m.View, x.AsSpan(t * cols, cols), alone, 1, null, isa);
            Check.BitsEqual(alone, batch.AsSpan(t * rows, rows), $"{isa} token {t} alone vs inside tokens={tokens}");
        }

        for (int threads = 1; threads <= 4; threads++)
        {
            using var pool = new WorkerPool(threads);
            var one = new float[rows];
            MatMul.Multiply(m.View, x.AsSpan(0, cols), one, 1, pool, isa);
            Check.BitsEqual(batch.AsSpan(0, rows), one, $"{isa} tokens=1 on {threads} threads");
            var five = new float[tokens * rows];
            MatMul.Multiply(m.View, x, five, tokens, pool, isa);
            Check.BitsEqual(batch, five, $"{isa} tokens={tokens} on {threads} threads");
        }
    }

    [Theory]
    [MemberData(nameof(IsaType))]
    public void FusedProductsEqualSeparateOnesBitForBit(Isa isa, WeightType type)
    {
        var rnd = new Random(Cases.Seed(17, (int)isa, (int)type));
        const int cols = 903; // a vector tail of seven columns
        var q = TestMatrix.Random(rnd, 37, cols, type);   // rows not a multiple of four: blocks straddle the matrices
        var k = TestMatrix.Random(rnd, 9, cols, type);
        var v = TestMatrix.Random(rnd, 130, cols, type);
        var x = Cases.Uniform(rnd, cols, -1, 1);
        float[] Alone(TestMatrix m) { var y = new float[m.View.Rows]; MatMul.Multiply(m.View, x, y, 1, null, isa); return y; }
        for (int threads = 0; threads <= 3; threads++)
        {
            using var pool = threads == 0 ? null : new WorkerPool(threads);
            float[] yq = new float[37], yk = new float[9], yv = new float[130];
            Paths.Forced(isa, "MultiplyFused", () => MatMul.MultiplyFused(q.View, yq, k.View, yk, v.View, yv, x, pool, isa));
            Check.BitsEqual(Alone(q), yq, $"{isa} {type} q on {threads} threads");
            Check.BitsEqual(Alone(k), yk, $"{isa} {type} k on {threads} threads");
            Check.BitsEqual(Alone(v), yv, $"{isa} {type} v on {threads} threads");
            float[] g = new float[37], u = new float[9];
            MatMul.MultiplyFused(q.View, g, k.View, u, default, default, x, pool, isa);
            Check.BitsEqual(yq, g, $"{isa} {type} two matrices, first");
            Check.BitsEqual(yk, u, $"{isa} {type} two matrices, second");
        }
        // A small batch through the fused job: each token's rows as the plain product computes them.
        foreach (int tokens in type == WeightType.F16 ? new[] { 2, 4 } : [2, 5, 16, 33])
        {
            var xs = Cases.Uniform(rnd, tokens * cols, -1, 1);
            float[] Batch(TestMatrix m) { var y = new float[tokens * m.View.Rows]; MatMul.Multiply(m.View, xs, y, tokens, null, isa); return y; }
            using var pool = new WorkerPool(2);
            float[] yq = new float[tokens * 37], yk = new float[tokens * 9], yv = new float[tokens * 130];
            Paths.Forced(isa, $"MultiplyFused, {tokens} tokens", () => MatMul.MultiplyFused(q.View, yq, k.View, yk, v.View, yv, xs, tokens, pool, isa));
            Check.BitsEqual(Batch(q), yq, $"{isa} {type} q, {tokens} tokens");
            Check.BitsEqual(Batch(k), yk, $"{isa} {type} k, {tokens} tokens");
            Check.BitsEqual(Batch(v), yv, $"{isa} {type} v, {tokens} tokens");
        }
        if (type == WeightType.F16) // F16 past four tokens widens into a scratch instead, which the fused job does not do
            Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.MultiplyFused(q.View, new float[999 * 37], k.View, new float[999 * 9], default, default,
                new float[999 * cols], 5));
        var other = TestMatrix.Random(rnd, 4, cols + 1, type);
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyFused(q.View, new float[37], other.View, new float[4], default, default, x));
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyFused(q.View, new float[36], k.View, new float[9], default, default, x));
    }

    [Fact]
    public void WeightMatrixValidatesAndReadsRows()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CreateView(-1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => CreateView(2, -1));
        Assert.Throws<ArgumentNullException>(() => CreateView(2, 2));
        var empty = CreateView(0, 5);
        Assert.Equal(0, empty.ByteLength);

        var m = TestMatrix.Random(new Random(6), 3, 17, WeightType.F16);
        var v = m.View;
        Assert.Equal(34, v.RowBytes);
        Assert.Equal(102, v.ByteLength);
        var row = new float[17];
        v.ReadRow(2, row);
        for (int c = 0; c < 17; c++) Assert.Equal(m.Widened[2 * 17 + c], (double)row[c]);
        Assert.Throws<ArgumentOutOfRangeException>(() => v.RowBytesSpan(3));
        Assert.Throws<ArgumentException>(() => v.ReadRow(0, new float[16]));
    }

    [Theory]
    [InlineData(WeightType.F32, 4)]
    [InlineData(WeightType.BF16, 2)]
    [InlineData(WeightType.F16, 2)]
    public void WeightTypesKnowTheirBlockLayout(WeightType type, int bytes)
    {
        Assert.Equal(1, WeightTypes.BlockSize(type));
        Assert.Equal(bytes, WeightTypes.BlockBytes(type));
        Assert.Equal(bytes, WeightTypes.SizeOf(type));
        Assert.Equal(17L * bytes, WeightTypes.ByteCount(type, 17));
        Assert.Equal(0, WeightTypes.ByteCount(type, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightTypes.ByteCount(type, -1));
        var m = TestMatrix.Random(new Random(7), 2, 9, type);
        Assert.Equal(WeightTypes.ByteCount(type, 9), m.View.RowBytes);
        Assert.Equal(2 * m.View.RowBytes, m.View.ByteLength);
    }

    [Fact]
    public void UnknownWeightTypesAreRejected()
    {
        var unknown = (WeightType)99;
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightTypes.BlockSize(unknown));
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightTypes.BlockBytes(unknown));
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightTypes.SizeOf(unknown));
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightTypes.ByteCount(unknown, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => CreateView(1, 4, unknown));
    }

    private static unsafe WeightMatrix CreateView(int rows, int cols, WeightType type = WeightType.F32) => new(null, rows, cols, type);
}
