using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>IEEE float32, read as stored.</summary>
internal readonly struct F32Row : IRowFormat
{
    public static int BlockBytes => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref byte row, nint index) => Vector512.LoadUnsafe(ref Unsafe.As<byte, float>(ref row), (nuint)index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref byte row, nint index) => Vector256.LoadUnsafe(ref Unsafe.As<byte, float>(ref row), (nuint)index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(ref byte row, nint index) => Unsafe.Add(ref Unsafe.As<byte, float>(ref row), index);
}
