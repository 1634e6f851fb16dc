namespace Qwen2.Kernels;

/// <summary>
/// A K-quant format's vector kernels: one row of super-blocks against TN.Count tokens'
/// <see cref="ActivationFormat.Q8K"/> activations, each weight super-block unpacked once for all of them, and
/// dst[t] exactly the scalar twin's dot product with token t.
/// </summary>
internal interface IKQuantKernel
{
    /// <summary>The 256-bit kernel (AVX2, with AVX-VNNI where the CPU has it).</summary>
    static abstract void Tokens256<TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where TN : struct, ITokens;

    /// <summary>The 512-bit kernel (AVX-512BW).</summary>
    static abstract void Tokens512<TN>(ref byte w, ref byte a, nint aStride, int blocks, ref float dst) where TN : struct, ITokens;
}
