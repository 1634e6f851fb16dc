using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// A reduction over one span, written once per width: one vector accumulator over full vectors, its horizontal total,
/// then the scalar tail in order (<see cref="ElementwiseDriver.Reduce{TOp}"/>).
/// </summary>
internal interface IReduceOperator
{
    /// <summary>The accumulator's starting value (in every lane).</summary>
    static abstract float Identity { get; }
    static abstract Vector512<float> Accumulate(Vector512<float> acc, Vector512<float> x);
    static abstract Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> x);
    static abstract float Accumulate(float acc, float x);
    static abstract float Total(Vector512<float> acc);
    static abstract float Total(Vector256<float> acc);
}
