namespace Qwen2.Kernels;

/// <summary>The instruction-set path a kernel runs on. Every vector path has a scalar twin that states the math plainly.</summary>
public enum Isa
{
    /// <summary>Plain scalar loops: the reference every vector path is held to, and the fallback on any CPU.</summary>
    Scalar = 0,
    /// <summary>256-bit vectors (AVX2 + FMA on x64).</summary>
    Vector256 = 1,
    /// <summary>512-bit vectors (AVX-512 on x64).</summary>
    Vector512 = 2,
}
