using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Qwen2.Kernels.Tests;

/// <summary>Theory data and sizes shared by the kernel tests.</summary>
internal static class Cases
{
    /// <summary>The project's awkward sizes: below, between and above every vector width, and the Qwen2-0.5B widths.</summary>
    public static readonly int[] AwkwardSizes = [1, 7, 17, 63, 65, 896, 4864];

    /// <summary>Every path this process can run (only scalar under DOTNET_EnableHWIntrinsic=0).</summary>
    public static TheoryData<Isa> Isas()
    {
        var data = new TheoryData<Isa>();
        foreach (var isa in IsaSupport.Supported) data.Add(isa);
        return data;
    }

    /// <summary>Every supported path with every awkward size.</summary>
    public static TheoryData<Isa, int> IsasAndSizes()
    {
        var data = new TheoryData<Isa, int>();
        foreach (var isa in IsaSupport.Supported)
            foreach (int n in AwkwardSizes) data.Add(isa, n);
        return data;
    }

    /// <summary>A seed that depends only on the arguments (unlike HashCode, which is randomized per process).</summary>
    public static int Seed(params int[] parts)
    {
        int s = 17;
        foreach (int p in parts) s = unchecked(s * 1_000_003 + p);
        return s;
    }

    public static float[] Uniform(Random rnd, int n, float lo, float hi)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * rnd.NextSingle();
        return a;
    }
}

/// <summary>Element encodings worked out from the formats' definitions, independent of the kernels' own conversions.</summary>
internal static class Formats
{
    /// <summary>binary16 decoded from its fields in double: (−1)^s · 2^(e−15) · (1 + m/1024), subnormals m · 2^−24.</summary>
    public static double HalfBitsToDouble(ushort bits)
    {
        int e = (bits >> 10) & 0x1F, m = bits & 0x3FF;
        double v = e switch
        {
            0 => Math.ScaleB(m, -24),
            0x1F => m == 0 ? double.PositiveInfinity : double.NaN,
            _ => Math.ScaleB(1024 + m, e - 25),
        };
        return (bits & 0x8000) != 0 ? -v : v;
    }

    /// <summary>bfloat16 is the upper half of a float32.</summary>
    public static float Bf16BitsToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Rounds a float to bfloat16 by truncation (any bf16 value will do as a weight).</summary>
    public static ushort SingleToBf16Bits(float f) => (ushort)(BitConverter.SingleToUInt32Bits(f) >> 16);

    public static ushort SingleToHalfBits(float f) => BitConverter.HalfToUInt16Bits((Half)f);
}

/// <summary>A weight matrix in pinned memory with its elements decoded independently to double.</summary>
internal sealed unsafe class TestMatrix
{
    private readonly byte[] _bytes;

    public int Rows { get; }
    public int Cols { get; }
    public WeightType Type { get; }
    /// <summary>The stored elements, decoded in the test (not by the kernels), row-major.</summary>
    public double[] Widened { get; }

    private TestMatrix(int rows, int cols, WeightType type)
    {
        Rows = rows; Cols = cols; Type = type;
        // The pinned object heap never moves the array, so the view's pointer stays valid.
        _bytes = GC.AllocateArray<byte>(Math.Max(1, checked((int)WeightTypes.ByteCount(type, (long)rows * cols))), pinned: true);
        Widened = new double[rows * cols];
        Terms = Widened;
    }

    /// <summary>
    /// Per element, the size of the terms its decoded value is made of (|q · d| + |minimum| for a block-quantized type,
    /// else |value|): what float rounding in a dot product scales with.
    /// </summary>
    public double[] Terms { get; private set; }

    /// <summary>A block-quantized matrix of random blocks (random bits, random finite scales), decoded by <see cref="QuantizedData"/>.</summary>
    public static TestMatrix RandomQuantized(Random rnd, int rows, int cols, WeightType type)
    {
        var m = new TestMatrix(rows, cols, type);
        var bytes = QuantizedData.RandomBlocks(rnd, type, rows * cols / WeightTypes.BlockSize(type));
        bytes.CopyTo(m._bytes, 0);
        m.Terms = new double[rows * cols];
        long rowBytes = WeightTypes.ByteCount(type, cols);
        for (int r = 0; r < rows; r++)
        {
            var (v, t) = QuantizedData.Decode(type, bytes.AsSpan((int)(r * rowBytes), (int)rowBytes), cols);
            v.CopyTo(m.Widened, r * cols);
            t.CopyTo(m.Terms, r * cols);
        }
        return m;
    }

    /// <summary>
    /// <see cref="QuantizedData.Reference"/> of row <paramref name="r"/> with token <paramref name="t"/>: the float64 dot
    /// and the bound a dot on quantized activations stays within.
    /// </summary>
    public (double Sum, double Bound) QuantizedReference(float[] x, int t, int r) =>
        QuantizedData.Reference(Type, Widened.AsSpan(r * Cols, Cols).ToArray(), Terms.AsSpan(r * Cols, Cols).ToArray(), x.AsSpan(t * Cols, Cols));

    public WeightMatrix View => new((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_bytes)), Rows, Cols, Type);

    /// <summary>A matrix whose element [r, c] is <paramref name="value"/>(r, c) stored in <paramref name="type"/> (rounded as needed).</summary>
    public static TestMatrix Create(int rows, int cols, WeightType type, Func<int, int, float> value)
    {
        var m = new TestMatrix(rows, cols, type);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                float v = value(r, c);
                switch (type)
                {
                    case WeightType.F32:
                        MemoryMarshal.Write(m._bytes.AsSpan(i * 4), v);
                        m.Widened[i] = v;
                        break;
                    case WeightType.BF16:
                        ushort b = Formats.SingleToBf16Bits(v);
                        MemoryMarshal.Write(m._bytes.AsSpan(i * 2), b);
                        m.Widened[i] = Formats.Bf16BitsToSingle(b);
                        break;
                    case WeightType.F16:
                        ushort h = Formats.SingleToHalfBits(v);
                        MemoryMarshal.Write(m._bytes.AsSpan(i * 2), h);
                        m.Widened[i] = Formats.HalfBitsToDouble(h);
                        break;
                    default:
                        throw new ArgumentOutOfRangeException(nameof(type));
                }
            }
        return m;
    }

    /// <summary>y[t, r] = Σ_c W[r, c]·x[t, c] in double from the decoded elements, with Σ|W·x| to scale a tolerance.</summary>
    public (double Sum, double Magnitude) Reference(float[] x, int t, int r)
    {
        double s = 0, a = 0;
        for (int c = 0; c < Cols; c++)
        {
            double p = Widened[r * Cols + c] * x[t * Cols + c];
            s += p; a += Math.Abs(p);
        }
        return (s, a);
    }

    public static TestMatrix Random(Random rnd, int rows, int cols, WeightType type) =>
        Create(rows, cols, type, (_, _) => 2 * rnd.NextSingle() - 1);
}

/// <summary>Assertions that check every element but only build a message for the first failure.</summary>
internal static class Check
{
    public static void BitsEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            uint e = BitConverter.SingleToUInt32Bits(expected[i]), a = BitConverter.SingleToUInt32Bits(actual[i]);
            if (e != a) Assert.Fail($"{what}: element {i} is {actual[i]:R} (0x{a:X8}), expected {expected[i]:R} (0x{e:X8})");
        }
    }

    /// <summary>Passes when |actual − expected| ≤ tolerance; NaN never passes.</summary>
    public static void Close(double expected, double actual, double tolerance, string what)
    {
        if (!(Math.Abs(actual - expected) <= tolerance))
            Assert.Fail($"{what}: got {actual:R}, expected {expected:R}, difference {Math.Abs(actual - expected):E3} > tolerance {tolerance:E3}");
    }

    /// <summary>The same float bit for bit, except that any NaN matches any NaN (payloads may differ between paths).</summary>
    public static void SameValue(float expected, float actual, string what)
    {
        if (float.IsNaN(expected) ? float.IsNaN(actual)
            : BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual)) return;
        Assert.Fail($"{what}: got {actual:R} (0x{BitConverter.SingleToUInt32Bits(actual):X8}), expected {expected:R} (0x{BitConverter.SingleToUInt32Bits(expected):X8})");
    }
}

/// <summary>Checks that a kernel ran the path a test forced, from the record its driver keeps (<see cref="KernelPath"/>).</summary>
internal static class Paths
{
    public static void AssertRan(Isa isa, string what)
    {
        var last = KernelPath.Last;
        if (last != isa) Assert.Fail($"{what}: forced {isa}, but the kernel ran {(last == KernelPath.None ? "no recorded path" : last.ToString())}");
    }

    /// <summary>Runs <paramref name="call"/> with the record cleared and asserts it dispatched to <paramref name="isa"/>.</summary>
    public static void Forced(Isa isa, string what, Action call)
    {
        KernelPath.Reset();
        call();
        AssertRan(isa, what);
    }

    /// <inheritdoc cref="Forced(Isa, string, Action)"/>
    public static T Forced<T>(Isa isa, string what, Func<T> call)
    {
        KernelPath.Reset();
        var result = call();
        AssertRan(isa, what);
        return result;
    }
}
