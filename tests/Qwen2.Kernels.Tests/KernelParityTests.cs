namespace Qwen2.Kernels.Tests;

/// <summary>
/// One parity harness for the kernels, in the spirit of ggml's test-backend-ops: a table of cases (operation × shape,
/// awkward sizes included), each run on every supported path. A run must report the path it was forced onto, match its
/// scalar twin (bit for bit where every width rounds the same, else within the case's tolerance) and match a float64
/// reference computed plainly here from the same inputs.
/// </summary>
public class KernelParityTests
{
    /// <summary>One row of the table.</summary>
    private sealed class KernelCase
    {
        /// <summary>Runs the operation on a path and returns every float it wrote.</summary>
        public required Func<Isa, float[]> Run { get; init; }
        /// <summary>The float64 reference of those floats.</summary>
        public required double[] Reference { get; init; }
        /// <summary>The tolerance of output element i, against the reference and (unless exact) the scalar twin.</summary>
        public required Func<int, double> Tolerance { get; init; }
        /// <summary>Whether every vector path must give the scalar twin's bits.</summary>
        public bool ExactVsScalar { get; init; }
        /// <summary>Assertions of the case's own (masked entries, untouched floats), on each path's output.</summary>
        public Action<Isa, string, float[]>? Extra { get; init; }
    }

    private static readonly WeightType[] Types = [WeightType.F32, WeightType.BF16, WeightType.F16];
    // 1, 5 and 9 rows leave a partial block of four (Dot1); 33 mixes eight full blocks (Dot4) with one partial row.
    private static readonly int[] MatMulRows = [1, 5, 9, 33];
    // Streamed tiles of one to four tokens and each remainder; for F16 past four tokens, the widened-scratch path with
    // its own remainders (4x4 tiles on AVX-512, 4x2 on AVX2, single tokens).
    private static readonly int[] MatMulTokens = [1, 2, 3, 4, 5, 7, 16, 19];

    private static readonly Dictionary<string, Func<KernelCase>> Catalogue = Build();

    private static Dictionary<string, Func<KernelCase>> Build()
    {
        var c = new Dictionary<string, Func<KernelCase>>();
        foreach (int n in Cases.AwkwardSizes)
        {
            c[$"RmsNorm d={n}"] = () => RmsNormCase(n);
            c[$"SiluMul n={n}"] = () => SiluMulCase(n);
            c[$"Softmax n={n}"] = () => SoftmaxCase(n);
            c[$"Add n={n}"] = () => AddCase(n);
            foreach (var type in Types) c[$"Dot {type} n={n}"] = () => DotCase(type, n);
        }
        // Halves 1, 7, 17, 63, 65, 32, 64 cover every vector width and tail.
        foreach (int half in Cases.AwkwardSizes.Where(n => n < 100).Concat([32, 64]))
            c[$"Rope d={2 * half}"] = () => RopeCase(2 * half);
        foreach (int n in new[] { 7, 65, 896 }) c[$"AddBias 3x{n}"] = () => AddBiasCase(n);
        foreach (var type in Types)
            foreach (int cols in Cases.AwkwardSizes)
                foreach (int rows in MatMulRows) c[$"MatMul {type} {rows}x{cols}"] = () => MatMulCase(type, rows, cols);
        foreach (var type in QuantizedData.Types)
        {
            // One block, an odd count, and the Qwen2-0.5B widths where the type's blocks fit them.
            foreach (int n in new[] { 32, 224, 256, 896, 4864 }.Where(n => n % WeightTypes.BlockSize(type) == 0))
                c[$"Dot {type} n={n}"] = () => DotCase(type, n);
            foreach (int cols in new[] { 256, 4864 })
                foreach (int rows in MatMulRows) c[$"MatMul {type} {rows}x{cols}"] = () => MatMulCase(type, rows, cols);
        }
        foreach (int d in AttentionTests.HeadDims)
        {
            int index = 0;
            foreach (var s in AttentionTests.Scenarios(d))
            {
                int at = index++;
                c[$"Attention {s}"] = () => AttentionCase(d, at);
            }
        }
        return c;
    }

    public static TheoryData<string, Isa> Table()
    {
        var data = new TheoryData<string, Isa>();
        foreach (string name in Catalogue.Keys)
            foreach (var isa in IsaSupport.Supported) data.Add(name, isa);
        return data;
    }

    [Theory]
    [MemberData(nameof(Table))]
    public void MatchesScalarTwinAndDoubleReferenceOnTheForcedPath(string name, Isa isa)
    {
        var c = Catalogue[name]();
        var got = Paths.Forced(isa, $"{name} on {isa}", () => c.Run(isa));
        var twin = Paths.Forced(Isa.Scalar, $"{name} scalar twin", () => c.Run(Isa.Scalar));
        Assert.Equal(c.Reference.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
        {
            double tol = c.Tolerance(i);
            Check.Close(c.Reference[i], got[i], tol, $"{isa} {name} [{i}] vs double");
            Check.Close(c.Reference[i], twin[i], tol, $"scalar {name} [{i}] vs double");
            if (!c.ExactVsScalar) Check.Close(twin[i], got[i], tol, $"{isa} {name} [{i}] vs scalar twin");
        }
        if (c.ExactVsScalar) Check.BitsEqual(twin, got, $"{isa} {name} vs scalar twin");
        c.Extra?.Invoke(isa, $"{isa} {name}", got);
        c.Extra?.Invoke(Isa.Scalar, $"scalar {name}", twin);
    }

    [Fact]
    public void TheTableCoversEveryKernel()
    {
        foreach (string op in new[] { "RmsNorm", "Rope", "SiluMul", "Softmax", "Add ", "AddBias", "Dot", "MatMul", "Attention" })
            Assert.Contains(Catalogue.Keys, k => k.StartsWith(op, StringComparison.Ordinal));
    }

    // ---- the cases ----

    private static KernelCase RmsNormCase(int d)
    {
        const int Rows = 3;
        const float Eps = 1e-6f;
        var rnd = new Random(Cases.Seed(1, d));
        var x = Cases.Uniform(rnd, Rows * d, -2, 2);
        x.AsSpan(d, d).Clear(); // an all-zero row: y = 0 · 1/√eps · w, not NaN
        var w = Cases.Uniform(rnd, d, 0.5f, 1.5f);
        var exact = new double[Rows * d];
        for (int r = 0; r < Rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)x[r * d + i] * x[r * d + i];
            double inv = 1 / Math.Sqrt(ss / d + Eps);
            for (int i = 0; i < d; i++) exact[r * d + i] = x[r * d + i] * inv * w[i];
        }
        return new KernelCase
        {
            Run = isa => { var y = new float[Rows * d]; RmsNorm.Apply(x, w, Eps, y, Rows, isa); return y; },
            Reference = exact,
            Tolerance = i => 1e-5 * Math.Abs(exact[i]) + 1e-30,
            Extra = (_, at, y) => Assert.All(y.AsSpan(d, d).ToArray(), v => Assert.Equal(0f, v)),
        };
    }

    private static KernelCase RopeCase(int headDim)
    {
        const int Heads = 3;
        int half = headDim / 2;
        var rnd = new Random(Cases.Seed(2, headDim));
        var cos = new float[half];
        var sin = new float[half];
        Rope.Angles(37, Rope.InverseFrequencies(headDim, 1_000_000), cos, sin);
        var x0 = Cases.Uniform(rnd, Heads * headDim + 3, -3, 3); // 3 trailing floats must stay untouched
        var exact = x0.Select(v => (double)v).ToArray();
        var tol = new double[x0.Length];
        for (int h = 0; h < Heads; h++)
            for (int j = 0; j < half; j++)
            {
                int i1 = h * headDim + j, i2 = i1 + half;
                double a = x0[i1], b = x0[i2], c = cos[j], s = sin[j];
                exact[i1] = a * c - b * s;
                exact[i2] = b * c + a * s;
                // Each output is two rounded products and a rounded sum of terms no larger than |a| + |b| (|c|, |s| ≤ 1).
                tol[i1] = tol[i2] = 1e-6 * (Math.Abs(a) + Math.Abs(b)) + 1e-30;
            }
        return new KernelCase
        {
            Run = isa => { var x = (float[])x0.Clone(); Rope.Apply(x, Heads, headDim, cos, sin, isa); return x; },
            Reference = exact,
            Tolerance = i => tol[i],
            ExactVsScalar = true, // the same products and sums, lane by lane, on every width
            Extra = (_, at, x) => Check.BitsEqual(x0.AsSpan(Heads * headDim), x.AsSpan(Heads * headDim), at + " floats after the heads"),
        };
    }

    internal static float[] Gates(Random rnd, int n)
    {
        var g = Cases.Uniform(rnd, n, -12, 12);
        float[] special = [0f, -0f, 100f, -100f, 87f, -87f, 20f, -20f];
        for (int i = 0; i < Math.Min(n, special.Length); i++) g[(i * 13) % n] = special[i];
        return g;
    }

    private static KernelCase SiluMulCase(int n)
    {
        var rnd = new Random(Cases.Seed(4, n));
        var g = Gates(rnd, n);
        var u = Cases.Uniform(rnd, n, -3, 3);
        var exact = new double[n];
        for (int i = 0; i < n; i++) exact[i] = g[i] / (1 + Math.Exp(-(double)g[i])) * u[i];
        return new KernelCase
        {
            Run = isa => { var y = new float[n]; Activations.SiluMul(g, u, y, isa); return y; },
            Reference = exact,
            Tolerance = i => 2e-6 * Math.Abs(exact[i]) + 1e-30,
        };
    }

    private static KernelCase SoftmaxCase(int n)
    {
        var rnd = new Random(Cases.Seed(6, n));
        var x0 = Cases.Uniform(rnd, n, -10, 10);
        if (n > 1)
            for (int i = 3; i < n; i += 5) x0[i] = float.NegativeInfinity; // masked entries, the last included for n = 63 and 896
        double max = x0.Max(v => (double)v);
        var e = x0.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        var exact = e.Select(v => v / sum).ToArray();
        return new KernelCase
        {
            Run = isa => { var x = (float[])x0.Clone(); Activations.Softmax(x, isa); return x; },
            Reference = exact,
            Tolerance = i => 1e-5 * exact[i] + 1e-30,
            Extra = (_, at, x) =>
            {
                for (int i = 0; i < n; i++)
                    if (float.IsNegativeInfinity(x0[i])) Assert.Equal(0u, BitConverter.SingleToUInt32Bits(x[i]));
                Check.Close(1, x.Sum(v => (double)v), 1e-5, at + " sums to one");
            },
        };
    }

    private static KernelCase AddCase(int n)
    {
        var rnd = new Random(Cases.Seed(8, n));
        var a = Cases.Uniform(rnd, n, -4, 4);
        var b = Cases.Uniform(rnd, n, -4, 4);
        var exact = new double[n];
        for (int i = 0; i < n; i++) exact[i] = (double)a[i] + b[i];
        return new KernelCase
        {
            Run = isa => { var y = (float[])a.Clone(); Elementwise.Add(y, b, y, isa); return y; }, // y aliases a, as a residual add
            Reference = exact,
            Tolerance = i => 6e-8 * Math.Abs(exact[i]),
            ExactVsScalar = true,
        };
    }

    private static KernelCase AddBiasCase(int n)
    {
        const int Rows = 3;
        var rnd = new Random(Cases.Seed(9, n));
        var y0 = Cases.Uniform(rnd, Rows * n, -4, 4);
        var bias = Cases.Uniform(rnd, n, -1, 1);
        var exact = new double[Rows * n];
        for (int i = 0; i < exact.Length; i++) exact[i] = (double)y0[i] + bias[i % n];
        return new KernelCase
        {
            Run = isa => { var y = (float[])y0.Clone(); Elementwise.AddBias(y, bias, isa); return y; },
            Reference = exact,
            Tolerance = i => 6e-8 * Math.Abs(exact[i]),
            ExactVsScalar = true,
        };
    }

    private static KernelCase DotCase(WeightType type, int n)
    {
        var rnd = new Random(Cases.Seed(11, (int)type, n));
        var m = Matrix(rnd, 1, n, type);
        var x = Cases.Uniform(rnd, n, -1, 1);
        var (exact, tolerance) = Reference(m, x, 0, 0);
        return new KernelCase
        {
            Run = isa => [MatMul.Dot(m.View.RowBytesSpan(0), type, x, isa)],
            Reference = [exact],
            Tolerance = _ => tolerance,
            ExactVsScalar = WeightTypes.IsQuantized(type), // integer sums, then the format's fixed float steps
        };
    }

    /// <summary>
    /// Every token count of <see cref="MatMulTokens"/> through one matrix, the outputs concatenated. Besides the table's
    /// checks: each element is the bits of its row's dot product alone (one summation order, however it was blocked,
    /// tiled or streamed), nothing past tokens × rows is written, a pool changes no bit, and the scalar path is
    /// <see cref="MatMul.MultiplyScalar"/>.
    /// </summary>
    private static KernelCase MatMulCase(WeightType type, int rows, int cols)
    {
        var rnd = new Random(Cases.Seed(12, (int)type, rows, cols));
        var m = Matrix(rnd, rows, cols, type);
        var xs = MatMulTokens.Select(tokens => Cases.Uniform(rnd, tokens * cols, -1, 1)).ToArray();
        var exact = new List<double>();
        var tol = new List<double>();
        for (int k = 0; k < xs.Length; k++)
            for (int t = 0; t < MatMulTokens[k]; t++)
                for (int r = 0; r < rows; r++)
                {
                    var (s, tolerance) = Reference(m, xs[k], t, r);
                    exact.Add(s);
                    tol.Add(tolerance);
                }
        float[] Run(Isa isa, WorkerPool? pool)
        {
            var all = new List<float>();
            for (int k = 0; k < xs.Length; k++)
            {
                int tokens = MatMulTokens[k];
                const int Guard = 5;
                var y = new float[tokens * rows + Guard];
                y.AsSpan().Fill(float.NaN); // anything left unwritten shows up
                MatMul.Multiply(m.View, xs[k], y, tokens, pool, isa);
                for (int i = tokens * rows; i < y.Length; i++)
                    Assert.True(float.IsNaN(y[i]), $"Multiply wrote past tokens x rows at {i} (tokens={tokens})");
                all.AddRange(y.Take(tokens * rows));
            }
            return [.. all];
        }
        return new KernelCase
        {
            Run = isa => Run(isa, null),
            Reference = [.. exact],
            Tolerance = i => tol[i],
            ExactVsScalar = WeightTypes.IsQuantized(type),
            Extra = (isa, at, y) =>
            {
                int o = 0;
                for (int k = 0; k < xs.Length; k++)
                {
                    int tokens = MatMulTokens[k];
                    for (int t = 0; t < tokens; t++)
                        for (int r = 0; r < rows; r++, o++)
                        {
                            float alone = MatMul.Dot(m.View.RowBytesSpan(r), type, xs[k].AsSpan(t * cols, cols), isa);
                            Assert.True(BitConverter.SingleToUInt32Bits(alone) == BitConverter.SingleToUInt32Bits(y[o]),
                                $"{at} tokens={tokens} y[{t},{r}]: {y[o]:R}, one row alone {alone:R}");
                        }
                }
                using var pool = new WorkerPool(3);
                Check.BitsEqual(y, Paths.Forced(isa, at + " on a pool", () => Run(isa, pool)), at + " pool(3) vs none");
                if (isa != Isa.Scalar) return;
                var twin = new List<float>();
                for (int k = 0; k < xs.Length; k++)
                {
                    var yt = new float[MatMulTokens[k] * rows];
                    MatMul.MultiplyScalar(m.View, xs[k], yt, MatMulTokens[k]);
                    twin.AddRange(yt);
                }
                Check.BitsEqual([.. twin], y, at + " vs MultiplyScalar");
            },
        };
    }

    private static TestMatrix Matrix(Random rnd, int rows, int cols, WeightType type) =>
        WeightTypes.IsQuantized(type) ? TestMatrix.RandomQuantized(rnd, rows, cols, type) : TestMatrix.Random(rnd, rows, cols, type);

    /// <summary>The float64 dot of row r and token t, and its tolerance: float rounding, or for a block-quantized type the bound of <see cref="QuantizedData.Reference"/>.</summary>
    private static (double Sum, double Tolerance) Reference(TestMatrix m, float[] x, int t, int r)
    {
        if (WeightTypes.IsQuantized(m.Type)) return m.QuantizedReference(x, t, r);
        var (s, magnitude) = m.Reference(x, t, r);
        return (s, 1e-5 * magnitude + 1e-6);
    }

    private static KernelCase AttentionCase(int headDim, int index)
    {
        var s = AttentionTests.Scenarios(headDim).ElementAt(index);
        return new KernelCase
        {
            Run = isa => s.Run(isa),
            Reference = s.Reference(),
            Tolerance = _ => AttentionTests.Tolerance, // values lie in [−1, 1], so outputs do too
        };
    }
}
