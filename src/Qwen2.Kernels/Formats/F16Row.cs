using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// binary16 widened with integer operations: exact for normals, subnormals, zeros, infinities and NaNs,
/// and independent of F16C (which .NET does not expose as a vector intrinsic).
/// </summary>
internal readonly struct F16Row : IRowFormat
{
    private const uint ExponentBias = 0x38000000; // (127 - 15) << 23
    private const float TwoToMinus24 = 5.9604644775390625e-8f;

    public static int BlockBytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FromBits(Vector512<uint> h)
    {
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var em = h & Vector512.Create(0x7FFFu);
        var normal = (em << 13) + Vector512.Create(ExponentBias);
        var infNan = normal + Vector512.Create(ExponentBias);
        var sub = (Vector512.ConvertToSingle(em.AsInt32()) * Vector512.Create(TwoToMinus24)).AsUInt32();
        var r = Vector512.ConditionalSelect(Vector512.LessThan(em, Vector512.Create(0x400u)), sub,
            Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(em, Vector512.Create(0x7C00u)), infNan, normal));
        return (r | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FromBits(Vector256<uint> h)
    {
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var em = h & Vector256.Create(0x7FFFu);
        var normal = (em << 13) + Vector256.Create(ExponentBias);
        var infNan = normal + Vector256.Create(ExponentBias);
        var sub = (Vector256.ConvertToSingle(em.AsInt32()) * Vector256.Create(TwoToMinus24)).AsUInt32();
        var r = Vector256.ConditionalSelect(Vector256.LessThan(em, Vector256.Create(0x400u)), sub,
            Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7C00u)), infNan, normal));
        return (r | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref byte row, nint index)
    {
        var h = Vector256.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref row), (nuint)index);
        var w = Avx512F.IsSupported ? Avx512F.ConvertToVector512UInt32(h) : Vector512.Create(Vector256.WidenLower(h), Vector256.WidenUpper(h));
        return FromBits(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref byte row, nint index)
    {
        var h = Vector128.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref row), (nuint)index);
        var w = Avx2.IsSupported ? Avx2.ConvertToVector256Int32(h).AsUInt32() : Vector256.Create(Vector128.WidenLower(h), Vector128.WidenUpper(h));
        return FromBits(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(ref byte row, nint index) => Widen(Unsafe.Add(ref Unsafe.As<byte, ushort>(ref row), index));
}
