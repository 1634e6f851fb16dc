using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>One vector width of float32 as a type, so that a loop whose order must match another library's can be written once for all widths.</summary>
internal interface IVectorWidth<TV> where TV : struct
{
    static abstract int Count { get; }
    static abstract TV Load(ref float p, nint index);
    static abstract TV Add(TV a, TV b);
    /// <summary>The last <paramref name="count"/> lanes of <paramref name="v"/>, the others +0.</summary>
    static abstract TV LastLanes(TV v, int count);
    /// <summary>The horizontal sum, as the width's own <c>Sum</c> computes it.</summary>
    static abstract float Sum(TV v);
}

internal readonly struct Width512 : IVectorWidth<Vector512<float>>
{
    public static int Count => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(ref float p, nint index) => Vector512.LoadUnsafe(ref p, (nuint)index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LastLanes(Vector512<float> v, int count) =>
        Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(16 - count)).AsSingle(), v, Vector512<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Vector512.Sum(v);
}

internal readonly struct Width256 : IVectorWidth<Vector256<float>>
{
    public static int Count => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(ref float p, nint index) => Vector256.LoadUnsafe(ref p, (nuint)index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LastLanes(Vector256<float> v, int count) =>
        Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(8 - count)).AsSingle(), v, Vector256<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v) => Vector256.Sum(v);
}

internal readonly struct Width128 : IVectorWidth<Vector128<float>>
{
    public static int Count => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(ref float p, nint index) => Vector128.LoadUnsafe(ref p, (nuint)index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LastLanes(Vector128<float> v, int count) =>
        Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(Vector128<int>.Indices, Vector128.Create(4 - count)).AsSingle(), v, Vector128<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v) => Vector128.Sum(v);
}
