using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels.Tests;

/// <summary>
/// BF16 and F16 widening over all 65 536 bit patterns (normals, subnormals, ±0, ±∞, NaNs): the scalar widening
/// against the formats' definitions, and every vector loader and path against the scalar widening.
/// </summary>
public class WideningTests
{
    private const int Patterns = 65536;

    private static ushort[] AllPatterns()
    {
        var a = new ushort[Patterns];
        for (int i = 0; i < Patterns; i++) a[i] = (ushort)i;
        return a;
    }

    private static float ScalarWiden(WeightType type, ushort bits) =>
        type == WeightType.BF16 ? Bf16Row.Widen(bits) : F16Row.Widen(bits);

    [Fact]
    public void ScalarWideningMatchesTheFormatDefinitions()
    {
        int nans = 0, subnormals = 0;
        for (int i = 0; i < Patterns; i++)
        {
            ushort b = (ushort)i;
            Check.SameValue(BitConverter.Int32BitsToSingle(b << 16), Bf16Row.Widen(b), $"BF16 0x{b:X4}");
            Check.SameValue((float)BitConverter.UInt16BitsToHalf(b), F16Row.Widen(b), $"F16 0x{b:X4} vs Half");
            double d = Formats.HalfBitsToDouble(b);
            Check.SameValue((float)d, F16Row.Widen(b), $"F16 0x{b:X4} vs fields");
            if (double.IsNaN(d)) nans++;
            if (d != 0 && Math.Abs(d) < Math.ScaleB(1, -14)) subnormals++;
        }
        // The walk above did cover the special classes: 2 x 1023 NaNs and 2 x 1023 subnormals.
        Assert.Equal(2046, nans);
        Assert.Equal(2046, subnormals);
        Assert.Equal(BitConverter.SingleToUInt32Bits(-0f), BitConverter.SingleToUInt32Bits(F16Row.Widen(0x8000)));
        Assert.Equal(float.NegativeInfinity, F16Row.Widen(0xFC00));
        Assert.Equal(float.PositiveInfinity, Bf16Row.Widen(0x7F80));
        Assert.Equal(5.9604644775390625e-8f, F16Row.Widen(0x0001));
    }

    [Fact]
    public void VectorLoadersWidenEveryPatternLikeTheScalarOne()
    {
        var bits = AllPatterns();
        ref byte row = ref MemoryMarshal.GetReference(MemoryMarshal.AsBytes(bits.AsSpan()));
        for (nint i = 0; i < Patterns; i += 16)
        {
            var b512 = Bf16Row.Load512(ref row, i);
            var f512 = F16Row.Load512(ref row, i);
            for (int l = 0; l < 16; l++)
            {
                ushort p = bits[i + l];
                Check.SameValue(Bf16Row.Widen(p), b512.GetElement(l), $"Bf16Row.Load512 0x{p:X4}");
                Check.SameValue(F16Row.Widen(p), f512.GetElement(l), $"F16Row.Load512 0x{p:X4}");
            }
        }
        for (nint i = 0; i < Patterns; i += 8)
        {
            var b256 = Bf16Row.Load256(ref row, i);
            var f256 = F16Row.Load256(ref row, i);
            for (int l = 0; l < 8; l++)
            {
                ushort p = bits[i + l];
                Check.SameValue(Bf16Row.Widen(p), b256.GetElement(l), $"Bf16Row.Load256 0x{p:X4}");
                Check.SameValue(F16Row.Widen(p), f256.GetElement(l), $"F16Row.Load256 0x{p:X4}");
            }
        }
        for (nint i = 0; i < Patterns; i++)
        {
            Check.SameValue(Bf16Row.Widen(bits[i]), Bf16Row.Load1(ref row, i), $"Bf16Row.Load1 0x{i:X4}");
            Check.SameValue(F16Row.Widen(bits[i]), F16Row.Load1(ref row, i), $"F16Row.Load1 0x{i:X4}");
        }
    }

    [Fact]
    public void F32LoaderReadsFloatsUnchanged()
    {
        var f = new float[48];
        var rnd = new Random(1);
        for (int i = 0; i < f.Length; i++) f[i] = BitConverter.Int32BitsToSingle(rnd.Next());
        ref byte row = ref MemoryMarshal.GetReference(MemoryMarshal.AsBytes(f.AsSpan()));
        var v512 = F32Row.Load512(ref row, 16);
        var v256 = F32Row.Load256(ref row, 40);
        for (int l = 0; l < 16; l++) Assert.Equal(BitConverter.SingleToUInt32Bits(f[16 + l]), BitConverter.SingleToUInt32Bits(v512.GetElement(l)));
        for (int l = 0; l < 8; l++) Assert.Equal(BitConverter.SingleToUInt32Bits(f[40 + l]), BitConverter.SingleToUInt32Bits(v256.GetElement(l)));
        Assert.Equal(BitConverter.SingleToUInt32Bits(f[47]), BitConverter.SingleToUInt32Bits(F32Row.Load1(ref row, 47)));
    }

    public static TheoryData<Isa, WeightType> IsaAndHalfTypes()
    {
        var data = new TheoryData<Isa, WeightType>();
        foreach (var isa in IsaSupport.Supported)
        {
            data.Add(isa, WeightType.BF16);
            data.Add(isa, WeightType.F16);
        }
        return data;
    }

    /// <summary>
    /// Each pattern through the real kernel path: a row of 33 elements that are zero except the pattern at lane
    /// p mod 33 (every vector lane and the scalar tail), times a one-hot x. The sum is the widened pattern plus zeros.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsaAndHalfTypes))]
    public void DotWithOneHotRecoversEveryPattern(Isa isa, WeightType type)
    {
        const int N = 33;
        var row = new ushort[N];
        var x = new float[N];
        for (int p = 0; p < Patterns; p++)
        {
            int lane = p % N;
            row[lane] = (ushort)p;
            x[lane] = 1;
            KernelPath.Reset();
            float got = MatMul.Dot(MemoryMarshal.AsBytes(row.AsSpan()), type, x, isa);
            if (KernelPath.Last != isa) Paths.AssertRan(isa, $"Dot one-hot 0x{p:X4}");
            row[lane] = 0;
            x[lane] = 0;
            // + 0f: a sum that starts from +0 turns −0 into +0; everything else comes through unchanged.
            Check.SameValue(ScalarWiden(type, (ushort)p) + 0f, got, $"{isa} {type} Dot one-hot 0x{p:X4} at lane {lane}");
        }
    }

    /// <summary>
    /// The row widening of the many-token F16 path (and BF16's) on each path as the job gives it, not as the hardware
    /// would pick: every pattern, over a length with a vector tail, comes out as the scalar widening's bits.
    /// </summary>
    [Theory]
    [MemberData(nameof(IsaAndHalfTypes))]
    public void RowWideningOnEachPathMatchesTheScalarOne(Isa isa, WeightType type)
    {
        var bits = AllPatterns();
        var dst = new float[Patterns - 3]; // a tail of 13 (mod 16) and 5 (mod 8) elements
        ref byte row = ref MemoryMarshal.GetReference(MemoryMarshal.AsBytes(bits.AsSpan()));
        if (type == WeightType.BF16) MatMul.Widen<Bf16Row>(ref row, dst, isa);
        else MatMul.Widen<F16Row>(ref row, dst, isa);
        for (int p = 0; p < dst.Length; p++) Check.SameValue(ScalarWiden(type, (ushort)p), dst[p], $"{isa} Widen {type} 0x{p:X4}");
    }

    [Theory]
    [InlineData(WeightType.BF16)]
    [InlineData(WeightType.F16)]
    public void ReadRowWidensEveryPatternLikeTheScalarOne(WeightType type)
    {
        var bits = AllPatterns();
        var dst = new float[Patterns];
        WeightTypes.ToSingle(type, MemoryMarshal.AsBytes(bits.AsSpan()), dst);
        for (int p = 0; p < Patterns; p++) Check.SameValue(ScalarWiden(type, (ushort)p), dst[p], $"ToSingle {type} 0x{p:X4}");
        Assert.Throws<ArgumentException>(() => WeightTypes.ToSingle(type, new byte[9], new float[5]));
    }
}
