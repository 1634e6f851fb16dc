using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// An element-wise operation y[i] = f(a[i], b[i]; s) with one scalar parameter s per call, written once per width;
/// <c>ElementwiseDriver.Map</c> owns the loops, the width choice and the tail.
/// </summary>
internal interface IMapOperator
{
    static abstract Vector512<float> Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> s);
    static abstract Vector256<float> Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> s);
    static abstract float Invoke(float a, float b, float s);

    /// <summary>
    /// Whether the last fewer-than-eight elements of a vector path go through the Vector256 body (on a zero-padded
    /// copy) instead of the scalar one: for an operation whose vector and scalar bodies round differently (Exp) and
    /// whose vector results must not depend on where an element sits.
    /// </summary>
    static virtual bool VectorTail => false;
}
