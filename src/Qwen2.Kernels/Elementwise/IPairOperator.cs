using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// An operation on two halves at once, (a[j], b[j]) ← f(a[j], b[j], c[j], s[j]), written once per width
/// (<see cref="ElementwiseDriver.MapPairs{TOp}"/>); RoPE's rotation of dimension j with j + d/2.
/// </summary>
internal interface IPairOperator
{
    static abstract (Vector512<float> A, Vector512<float> B) Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> s);
    static abstract (Vector256<float> A, Vector256<float> B) Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> s);
    static abstract (float A, float B) Invoke(float a, float b, float c, float s);
}
