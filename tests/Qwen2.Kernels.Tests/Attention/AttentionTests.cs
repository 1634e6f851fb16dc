namespace Qwen2.Kernels.Tests;

/// <summary>
/// Attention.Compute (its parity with the scalar path and a double reference is a table of <see cref="KernelParityTests"/>)
/// held to a naive double-precision reference (softmax(q·k/√d) over the keys the mask lets a query
/// see, query head h reading kv head h / (heads / kvHeads)), and AttentionMask's visibility rules.
/// </summary>
public class AttentionTests
{
    /// <summary>One attention call: queries, a past block and a current block, all with explicit positions.</summary>
    internal sealed class Scenario
    {
        public required string Name { get; init; }
        public required int Heads { get; init; }
        public required int KvHeads { get; init; }
        public required int HeadDim { get; init; }
        public required float[] Q { get; init; }
        public required int[] QueryPositions { get; init; }
        public required float[] PastK { get; init; }
        public required float[] PastV { get; init; }
        public required int[] PastPositions { get; init; }
        public required float[] CurK { get; init; }
        public required float[] CurV { get; init; }
        public required int[] CurPositions { get; init; }
        public required AttentionMask Mask { get; init; }

        public override string ToString() => $"{Name} heads={Heads}/{KvHeads} d={HeadDim}";

        public static Scenario Create(string name, int heads, int kvHeads, int headDim, int[] pastPositions, int[] curPositions,
            AttentionMask mask, int seed, int[]? queryPositions = null)
        {
            var rnd = new Random(seed);
            var qp = queryPositions ?? curPositions;
            int kvRow = kvHeads * headDim;
            return new Scenario
            {
                Name = name, Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Mask = mask,
                // Queries a little larger than keys, so some softmaxes are peaked and some flat.
                Q = Cases.Uniform(rnd, qp.Length * heads * headDim, -2, 2),
                QueryPositions = qp,
                PastK = Cases.Uniform(rnd, pastPositions.Length * kvRow, -1, 1),
                PastV = Cases.Uniform(rnd, pastPositions.Length * kvRow, -1, 1),
                PastPositions = pastPositions,
                CurK = Cases.Uniform(rnd, curPositions.Length * kvRow, -1, 1),
                CurV = Cases.Uniform(rnd, curPositions.Length * kvRow, -1, 1),
                CurPositions = curPositions,
            };
        }

        public int Keys => PastPositions.Length + CurPositions.Length;

        public float[] Run(Isa isa, WorkerPool? pool = null)
        {
            var output = new float[QueryPositions.Length * Heads * HeadDim];
            output.AsSpan().Fill(float.NaN); // every element must be written
            var scratch = new float[Attention.ScratchLength(Keys, pool?.Threads ?? 1)];
            scratch.AsSpan().Fill(float.NaN); // stale scratch must not leak into results
            KernelPath.Reset();
            Attention.Compute(Q, QueryPositions, Heads, KvHeads, HeadDim,
                new KvBlock(PastK, PastV, PastPositions), new KvBlock(CurK, CurV, CurPositions),
                Mask, output, scratch, pool, isa);
            Paths.AssertRan(isa, $"attention {this}");
            return output;
        }

        /// <summary>
        /// The same call with the past keys and values in pages of 2^<paramref name="shift"/> tokens, laid out as the
        /// engine's block pool lays them out (a page holds other layers' rows before and after this one's keys and
        /// values) and handed out in reverse order, so that a wrong page or offset reads someone else's numbers.
        /// </summary>
        public unsafe float[] RunPaged(Isa isa, int shift, WorkerPool? pool = null)
        {
            int kvRow = KvHeads * HeadDim, perPage = 1 << shift, pageCount = (PastPositions.Length + perPage - 1) / perPage;
            int pageFloats = perPage * kvRow, stride = 4 * pageFloats; // [other layer's K, V][this layer's K, V]
            var memory = GC.AllocateArray<float>(Math.Max(1, pageCount) * stride, pinned: true);
            memory.AsSpan().Fill(float.NaN);
            var pages = new nint[pageCount];
            fixed (float* baseAddress = memory)
            {
                for (int page = 0; page < pageCount; page++) pages[page] = (nint)(baseAddress + (nint)(pageCount - 1 - page) * stride);
                for (int k = 0; k < PastPositions.Length; k++)
                {
                    float* at = (float*)pages[k >> shift] + 2 * pageFloats + (k & (perPage - 1)) * kvRow;
                    PastK.AsSpan(k * kvRow, kvRow).CopyTo(new Span<float>(at, kvRow));
                    PastV.AsSpan(k * kvRow, kvRow).CopyTo(new Span<float>(at + pageFloats, kvRow));
                }
                var output = new float[QueryPositions.Length * Heads * HeadDim];
                output.AsSpan().Fill(float.NaN);
                var scratch = new float[Attention.ScratchLength(Keys, pool?.Threads ?? 1)];
                var past = new KvBlock(pages, 2 * pageFloats, 3 * pageFloats, shift, kvRow, PastPositions);
                for (int k = 0; k < PastPositions.Length; k++)
                {
                    Assert.True(past.KeyRow(k, kvRow).SequenceEqual(PastK.AsSpan(k * kvRow, kvRow)));
                    Assert.True(past.ValueRow(k, kvRow).SequenceEqual(PastV.AsSpan(k * kvRow, kvRow)));
                }
                KernelPath.Reset();
                Attention.Compute(Q, QueryPositions, Heads, KvHeads, HeadDim, past, new KvBlock(CurK, CurV, CurPositions),
                    Mask, output, scratch, pool, isa);
                Paths.AssertRan(isa, $"paged attention {this}");
                return output;
            }
        }

        /// <summary>The naive reference, in double; a query that sees no key gets zeros.</summary>
        public double[] Reference()
        {
            int d = HeadDim, kvRow = KvHeads * d, group = Heads / KvHeads;
            var keys = PastK.Concat(CurK).ToArray();
            var values = PastV.Concat(CurV).ToArray();
            var positions = PastPositions.Concat(CurPositions).ToArray();
            var output = new double[QueryPositions.Length * Heads * d];
            for (int t = 0; t < QueryPositions.Length; t++)
                for (int h = 0; h < Heads; h++)
                {
                    int kvh = h / group;
                    var visible = Enumerable.Range(0, positions.Length).Where(k => Mask.IsVisible(QueryPositions[t], positions[k])).ToArray();
                    if (visible.Length == 0) continue;
                    var scores = visible.Select(k =>
                    {
                        double s = 0;
                        for (int i = 0; i < d; i++) s += (double)Q[(t * Heads + h) * d + i] * keys[k * kvRow + kvh * d + i];
                        return s / Math.Sqrt(d);
                    }).ToArray();
                    double max = scores.Max();
                    var e = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double sum = e.Sum();
                    for (int j = 0; j < visible.Length; j++)
                        for (int i = 0; i < d; i++)
                            output[(t * Heads + h) * d + i] += e[j] / sum * values[visible[j] * kvRow + kvh * d + i];
                }
            return output;
        }
    }

    private static int[] Range(int start, int count) => Enumerable.Range(start, count).ToArray();

    internal static IEnumerable<Scenario> Scenarios(int headDim)
    {
        (int Heads, int KvHeads)[] shapes = [(4, 4), (6, 2), (14, 2)]; // MHA, GQA groups of 3 and 7
        int seed = 0;
        foreach (var (heads, kv) in shapes)
        {
            Scenario Make(string name, int[] past, int[] cur, AttentionMask mask) =>
                Scenario.Create(name, heads, kv, headDim, past, cur, mask, Cases.Seed(headDim, heads, kv, ++seed));
            yield return Make("causal prefill", [], Range(0, 7), AttentionMask.Causal);
            yield return Make("decode", Range(0, 12), [12], AttentionMask.Causal);
            yield return Make("chunked prefill", Range(0, 9), Range(9, 4), AttentionMask.Causal);
            yield return Make("sliding window prefill", [], Range(0, 9), new AttentionMask(3, 0, int.MaxValue));
            yield return Make("sliding window decode", Range(0, 12), Range(12, 3), new AttentionMask(5, 0, int.MaxValue));
            // A ring cache of 2 sinks + 6 recent slots after 20 tokens: slots out of order, position 14 stale for query 20.
            yield return Make("sinks + recent span", [0, 1, 18, 19, 14, 15, 16, 17], [20, 21], new AttentionMask(int.MaxValue, 2, 6));
            // A long chunk over a cache, several tiles per kv head, and a ring cache's sinks with it.
            yield return Make("chunked prefill over a ring", [0, 1, 30, 31, 26, 27, 28, 29], Range(32, 11), new AttentionMask(int.MaxValue, 2, 6));
        }
    }

    /// <summary>Head dimensions: below one 512-bit vector, not a multiple of 16, and the tiled path's multiples of 64.</summary>
    internal static readonly int[] HeadDims = [16, 24, 64, 128];

    public static TheoryData<Isa, int> IsasAndHeadDims()
    {
        var data = new TheoryData<Isa, int>();
        foreach (var isa in IsaSupport.Supported)
            foreach (int d in HeadDims) data.Add(isa, d);
        return data;
    }

    internal const double Tolerance = 1e-5; // values lie in [−1, 1], so outputs do too

    [Theory]
    [MemberData(nameof(IsasAndHeadDims))]
    public void PagedPastGivesTheFlatPastsBits(Isa isa, int headDim)
    {
        foreach (var s in Scenarios(headDim))
        {
            var flat = s.Run(isa);
            foreach (int shift in new[] { 0, 1, 2, 4 })
                Check.BitsEqual(flat, s.RunPaged(isa, shift), $"{isa} {s} in pages of {1 << shift}");
        }
        var big = Scenario.Create("paged prefill over a cache", 14, 2, headDim, Range(0, 48), Range(48, 16), AttentionMask.Causal, 103);
        using var pool = new WorkerPool(2);
        Check.BitsEqual(big.Run(isa), big.RunPaged(isa, 4, pool), $"{isa} {big} in pages of 16 on 2 threads");
    }

    /// <summary>
    /// A query's output does not depend on the queries computed with it: eight new tokens in one call give each token
    /// the bits it gets alone, with the tokens before it in the past (what cached decoding and prefix caching rely on).
    /// AVX-512's tiled kernel (head dimensions a multiple of 64, four queries or more) sums q·k in another order than
    /// its one-query kernel, so that pair is left out.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsasAndHeadDims))]
    public void AQueryGetsTheBitsItGetsAlone(Isa isa, int headDim)
    {
        if (isa == Isa.Vector512 && headDim % 64 == 0) return;
        foreach (var mask in new[] { AttentionMask.Causal, new AttentionMask(6, 0, int.MaxValue) })
        {
            var all = Scenario.Create("eight new tokens", 4, 2, headDim, Range(0, 21), Range(21, 8), mask, 104);
            var together = all.Run(isa);
            int kvRow = all.KvHeads * headDim, row = all.Heads * headDim;
            for (int t = 0; t < 8; t++)
            {
                var alone = new Scenario
                {
                    Name = $"token {t} alone", Heads = all.Heads, KvHeads = all.KvHeads, HeadDim = headDim, Mask = mask,
                    Q = all.Q[(t * row)..((t + 1) * row)], QueryPositions = [21 + t],
                    PastK = [.. all.PastK, .. all.CurK[..(t * kvRow)]], PastV = [.. all.PastV, .. all.CurV[..(t * kvRow)]],
                    PastPositions = Range(0, 21 + t),
                    CurK = all.CurK[(t * kvRow)..((t + 1) * kvRow)], CurV = all.CurV[(t * kvRow)..((t + 1) * kvRow)], CurPositions = [21 + t],
                };
                Check.BitsEqual(together[(t * row)..((t + 1) * row)], alone.Run(isa), $"{isa} d={headDim} {mask} token {t}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void WorkerPoolGivesIdenticalBits(Isa isa)
    {
        // Large enough (16 queries x 14 heads x 64 keys x d 64) that Compute really splits the work.
        var scenarios = new[]
        {
            Scenario.Create("prefill over a cache", 14, 2, 64, Range(0, 48), Range(48, 16), AttentionMask.Causal, 101),
            Scenario.Create("windowed prefill over a cache", 14, 2, 64, Range(0, 48), Range(48, 16), new AttentionMask(20, 0, int.MaxValue), 102),
        };
        foreach (var s in scenarios)
        {
            var alone = s.Run(isa);
            var exact = s.Reference();
            for (int i = 0; i < alone.Length; i++) Check.Close(exact[i], alone[i], Tolerance, $"{isa} {s} output[{i}]");
            for (int threads = 2; threads <= 3; threads++)
            {
                using var pool = new WorkerPool(threads);
                Check.BitsEqual(alone, s.Run(isa, pool), $"{isa} {s} on {threads} threads vs none");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases.Isas), MemberType = typeof(Cases))]
    public void QueryThatSeesNoKeyGetsZeros(Isa isa)
    {
        foreach (int d in new[] { 24, 64 }) // 64: the tiled prefill path on AVX-512
            CheckBlindQueries(isa, d);
    }

    private static void CheckBlindQueries(Isa isa, int headDim)
    {
        // Keys at 5..7 are all in the future of queries 0..2; the query at 6 sees 5 and 6.
        var s = Scenario.Create("future keys", 6, 2, headDim, Range(5, 3), [], AttentionMask.Causal, 201, queryPositions: [0, 1, 2, 6]);
        var got = s.Run(isa);
        var exact = s.Reference();
        int blind = 3 * s.Heads * s.HeadDim;
        Assert.All(got.Take(blind), v => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(v)));
        Assert.Contains(got.Skip(blind), v => v != 0);
        for (int i = 0; i < got.Length; i++) Check.Close(exact[i], got[i], Tolerance, $"{isa} future keys output[{i}]");

        // default(AttentionMask) hides every key: all zeros, no NaN.
        var hidden = Scenario.Create("default mask", 4, 4, 16, Range(0, 5), Range(5, 2), default, 202);
        Assert.All(hidden.Run(isa), v => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(v)));
    }

    [Fact]
    public void RejectsBadShapes()
    {
        var s = Scenario.Create("shape", 4, 2, 16, Range(0, 3), Range(3, 2), AttentionMask.Causal, 301);
        var output = new float[2 * 4 * 16];
        var scratch = new float[Attention.ScratchLength(5, 1)];
        Assert.Equal(20, scratch.Length);
        Assert.Equal(4, Attention.ScratchLength(0, 0));
        Assert.Equal(60, Attention.ScratchLength(5, 3));
        Assert.Throws<ArgumentException>(() => Attention.Compute(s.Q, s.QueryPositions, 4, 3, 16,
            new KvBlock(s.PastK, s.PastV, s.PastPositions), new KvBlock(s.CurK, s.CurV, s.CurPositions), s.Mask, output, scratch));
        Assert.Throws<ArgumentException>(() => Attention.Compute(s.Q, s.QueryPositions, 4, 2, 16,
            new KvBlock(s.PastK, s.PastV, s.PastPositions), new KvBlock(s.CurK, s.CurV, s.CurPositions), s.Mask, output, new float[4]));
        Assert.Throws<ArgumentException>(() => Attention.Compute(s.Q, s.QueryPositions, 4, 2, 16,
            new KvBlock(s.PastK, s.PastV, s.PastPositions), new KvBlock(s.CurK, s.CurV, s.CurPositions), s.Mask, new float[output.Length - 1], scratch));
        Assert.Throws<ArgumentException>(() => Attention.Compute(s.Q, s.QueryPositions, 4, 2, 16,
            new KvBlock(s.PastK.AsSpan(1), s.PastV, s.PastPositions), new KvBlock(s.CurK, s.CurV, s.CurPositions), s.Mask, output, scratch));
    }

    // ---- AttentionMask ----

    [Fact]
    public void CausalSeesEveryKeyAtOrBeforeTheQuery()
    {
        var m = AttentionMask.Causal;
        for (int q = 0; q < 64; q++)
            for (int k = 0; k < 64; k++)
                Assert.Equal(k <= q, m.IsVisible(q, k));
        // Positions far along stay fully visible. (At query int.MaxValue itself, a window of int.MaxValue tokens spans
        // 1..int.MaxValue, so key 0 drops out; no cache gets there.)
        int far = int.MaxValue - 1;
        Assert.True(m.IsVisible(far, 0));
        Assert.True(m.IsVisible(far, far / 2));
        Assert.True(m.IsVisible(far, far));
        Assert.True(m.IsVisible(int.MaxValue, int.MaxValue));
        Assert.False(m.IsVisible(far, far + 1));
        Assert.False(m.IsVisible(0, int.MaxValue));
    }

    /// <summary>Documented behaviour: <c>default(AttentionMask)</c> is a zero window, so it hides every key, even the query's own.</summary>
    [Fact]
    public void DefaultMaskHidesEverything()
    {
        AttentionMask m = default;
        Assert.Equal(new AttentionMask(0, 0, 0), m);
        Assert.NotEqual(AttentionMask.Causal, m);
        for (int q = 0; q < 64; q++)
            for (int k = 0; k < 64; k++)
                Assert.False(m.IsVisible(q, k), $"default mask shows key {k} to query {q}");
        Assert.False(m.IsVisible(int.MaxValue, int.MaxValue));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void SlidingWindowSeesTheLastWindowPositions(int window)
    {
        var m = new AttentionMask(window, 0, int.MaxValue);
        for (int q = 0; q < 40; q++)
        {
            var seen = Enumerable.Range(0, 50).Where(k => m.IsVisible(q, k)).ToArray();
            Assert.Equal(Range(Math.Max(0, q - window + 1), Math.Min(q + 1, window)), seen);
        }
    }

    [Theory]
    [InlineData(0, 4)]
    [InlineData(2, 6)]
    [InlineData(4, 1)]
    public void SinksAndRecentSpanSeeTheSinksAndTheRecentTokens(int sinks, int recent)
    {
        var m = new AttentionMask(int.MaxValue, sinks, recent);
        for (int q = 0; q < 40; q++)
        {
            var seen = Enumerable.Range(0, 50).Where(k => m.IsVisible(q, k)).ToArray();
            var expected = Range(0, Math.Min(sinks, q + 1)).Union(Range(Math.Max(0, q - recent + 1), Math.Min(q + 1, recent))).Order().ToArray();
            Assert.Equal(expected, seen);
        }
    }
}
