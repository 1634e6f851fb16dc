namespace Qwen2.Kernels.Tests;

/// <summary>
/// Products over block-quantized weights through MatMul: every output is the format's dot of its row and token
/// (<see cref="MatMul.MultiplyScalar"/> on the scalar path) for any token count, pool or tiling; fused and shared
/// products over mixed quantized types equal separate products; a decode step allocates nothing.
/// </summary>
public class QuantizedMatMulTests
{
    // 45 rows: enough work at 768 columns that even one token goes to the pool; three threads get 16, 16 and 13 rows,
    // so the four streams, their remainders and a partial row block are all exercised.
    private const int Rows = 45, Cols = 768;

    public static TheoryData<Isa, WeightType> IsaTypes()
    {
        var data = new TheoryData<Isa, WeightType>();
        foreach (var isa in IsaSupport.Supported)
            foreach (var t in QuantizedData.Types) data.Add(isa, t);
        return data;
    }

    private static float[] Product(TestMatrix m, float[] x, int tokens, WorkerPool? pool, Isa isa)
    {
        var y = new float[tokens * m.Rows + 3];
        y.AsSpan().Fill(float.NaN);
        Paths.Forced(isa, $"{m.Type} Multiply", () => MatMul.Multiply(m.View, x, y, tokens, pool, isa));
        Assert.All(y[(tokens * m.Rows)..], v => Assert.True(float.IsNaN(v), $"{m.Type} Multiply wrote past tokens x rows"));
        return y[..(tokens * m.Rows)];
    }

    [Theory]
    [MemberData(nameof(IsaTypes))]
    public void MultiplyIsMultiplyScalarForEveryTokenCountAndPool(Isa isa, WeightType type)
    {
        var rnd = new Random(Cases.Seed(31, (int)isa, (int)type));
        var m = TestMatrix.RandomQuantized(rnd, Rows, Cols, type);
        WorkerPool?[] pools = [null, new WorkerPool(1), new WorkerPool(2), new WorkerPool(3)];
        try
        {
            for (int tokens = 1; tokens <= 9; tokens++)
            {
                var x = Cases.Uniform(rnd, tokens * Cols, -2, 2);
                var twin = new float[tokens * Rows];
                MatMul.MultiplyScalar(m.View, x, twin, tokens);
                foreach (var pool in pools)
                    Check.BitsEqual(twin, Product(m, x, tokens, pool, isa), $"{type} {isa} tokens={tokens} threads={pool?.Threads ?? 0} vs MultiplyScalar");
            }
        }
        finally
        {
            foreach (var pool in pools) pool?.Dispose();
        }
    }

    /// <summary>Past one group of tokens (64): the tiling over tokens changes no bit.</summary>
    [Theory]
    [MemberData(nameof(IsaTypes))]
    public void ManyTokensAreEachTokensDot(Isa isa, WeightType type)
    {
        const int Tokens = 67, R = 9;
        var rnd = new Random(Cases.Seed(32, (int)isa, (int)type));
        var m = TestMatrix.RandomQuantized(rnd, R, 256, type);
        var x = Cases.Uniform(rnd, Tokens * 256, -1, 1);
        using var pool = new WorkerPool(2);
        var y = Product(m, x, Tokens, pool, isa);
        for (int t = 0; t < Tokens; t++)
            for (int r = 0; r < R; r++)
            {
                float alone = MatMul.Dot(m.View.RowBytesSpan(r), type, x.AsSpan(t * 256, 256), isa);
                Check.BitsEqual([alone], [y[t * R + r]], $"{type} {isa} y[{t},{r}] of {Tokens} tokens vs its row's Dot");
            }
    }

    public static TheoryData<Isa, WeightType, WeightType, WeightType> Mixes()
    {
        var data = new TheoryData<Isa, WeightType, WeightType, WeightType>();
        foreach (var isa in IsaSupport.Supported)
        {
            data.Add(isa, WeightType.Q5_0, WeightType.Q5_0, WeightType.Q8_0); // llama.cpp's q4_k_m on rows not a multiple of 256
            data.Add(isa, WeightType.Q4_K, WeightType.Q4_K, WeightType.Q6_K); // q4_k_m with more bits for v
            data.Add(isa, WeightType.Q4_0, WeightType.Q6_K, WeightType.Q5_1); // both activation formats in one job
            data.Add(isa, WeightType.Q5_K, WeightType.Q4_1, WeightType.Q8_0);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Mixes))]
    public void FusedAndSharedProductsOfMixedTypesEqualSeparateOnes(Isa isa, WeightType t0, WeightType t1, WeightType t2)
    {
        var rnd = new Random(Cases.Seed(33, (int)isa, (int)t0, (int)t1, (int)t2));
        var q = TestMatrix.RandomQuantized(rnd, 37, Cols, t0); // rows not a multiple of four: row blocks straddle the matrices
        var k = TestMatrix.RandomQuantized(rnd, 9, Cols, t1);
        var v = TestMatrix.RandomQuantized(rnd, 22, Cols, t2);
        foreach (int tokens in new[] { 1, 3, 9, 67 })
        {
            var x = Cases.Uniform(rnd, tokens * Cols, -1, 1);
            var eq = Product(q, x, tokens, null, isa);
            var ek = Product(k, x, tokens, null, isa);
            var ev = Product(v, x, tokens, null, isa);
            for (int threads = 0; threads <= 3; threads++)
            {
                using var pool = threads == 0 ? null : new WorkerPool(threads);
                float[] yq = new float[tokens * 37], yk = new float[tokens * 9], yv = new float[tokens * 22];
                string at = $"{t0}/{t1}/{t2} {isa} tokens={tokens} threads={threads}";
                Paths.Forced(isa, at, () => MatMul.MultiplyFused(q.View, yq, k.View, yk, v.View, yv, x, tokens, pool, isa));
                Check.BitsEqual(eq, yq, at + " fused q");
                Check.BitsEqual(ek, yk, at + " fused k");
                Check.BitsEqual(ev, yv, at + " fused v");
                float[] sq = new float[tokens * 37], sk = new float[tokens * 9];
                Paths.Forced(isa, at, () => MatMul.MultiplyShared(q.View, sq, k.View, sk, default, default, x, tokens, pool, isa));
                Check.BitsEqual(eq, sq, at + " shared, two matrices, first");
                Check.BitsEqual(ek, sk, at + " shared, two matrices, second");
            }
        }
        var other = TestMatrix.RandomQuantized(rnd, 4, 2 * Cols, t1);
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyFused(q.View, new float[37], other.View, new float[4], default, default, new float[Cols]));
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyFused(q.View, new float[36], k.View, new float[9], default, default, new float[Cols]));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.MultiplyFused(q.View, new float[37], k.View, new float[9], default, default, new float[Cols], 0));
    }

    /// <summary>Quantized and float matrices together cannot be fused, and a shared product runs them one after the other.</summary>
    [Fact]
    public void SharedProductsOfQuantizedAndFloatMatricesRunSeparately()
    {
        var rnd = new Random(34);
        var q = TestMatrix.RandomQuantized(rnd, 13, 256, WeightType.Q8_0);
        var f = TestMatrix.Random(rnd, 7, 256, WeightType.BF16);
        var x = Cases.Uniform(rnd, 2 * 256, -1, 1);
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyFused(q.View, new float[26], f.View, new float[14], default, default, x, 2));
        float[] yq = new float[26], yf = new float[14];
        MatMul.MultiplyShared(q.View, yq, f.View, yf, default, default, x, 2);
        Check.BitsEqual(Product(q, x, 2, null, IsaSupport.Best), yq, "shared quantized part");
        var ef = new float[14];
        MatMul.Multiply(f.View, x, ef, 2);
        Check.BitsEqual(ef, yf, "shared float part");
    }

    [Fact]
    public void ADecodeStepAllocatesNothing()
    {
        var rnd = new Random(35);
        var q = TestMatrix.RandomQuantized(rnd, 64, 896, WeightType.Q5_0);
        var v = TestMatrix.RandomQuantized(rnd, 16, 896, WeightType.Q8_0);
        var down = TestMatrix.RandomQuantized(rnd, 64, 1024, WeightType.Q4_K);
        var x = Cases.Uniform(rnd, 1024, -1, 1);
        float[] yq = new float[64], yk = new float[64], yv = new float[16], yd = new float[64];
        using var pool = new WorkerPool(2);
        void Step()
        {
            MatMul.MultiplyShared(q.View, yq, q.View, yk, v.View, yv, x.AsSpan(0, 896), 1, pool);
            MatMul.Multiply(down.View, x, yd, 1, pool);
        }
        Step(); // grows the thread's activation scratch once
        Native.Tests.AllocationProbe.AssertNoAllocation(Step, clean: 5, limit: 50, "a quantized decode step");
    }
}
