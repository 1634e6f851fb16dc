using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>bfloat16, widened by a 16-bit shift.</summary>
internal readonly struct Bf16Row : IRowFormat
{
    public static int BlockBytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref byte row, nint index)
    {
        var h = Vector256.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref row), (nuint)index);
        var w = Avx512F.IsSupported ? Avx512F.ConvertToVector512UInt32(h) : Vector512.Create(Vector256.WidenLower(h), Vector256.WidenUpper(h));
        return Vector512.ShiftLeft(w, 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref byte row, nint index)
    {
        var h = Vector128.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref row), (nuint)index);
        var w = Avx2.IsSupported ? Avx2.ConvertToVector256Int32(h).AsUInt32() : Vector256.Create(Vector128.WidenLower(h), Vector128.WidenUpper(h));
        return Vector256.ShiftLeft(w, 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(ref byte row, nint index) => Widen(Unsafe.Add(ref Unsafe.As<byte, ushort>(ref row), index));
}
