using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>Unpacked weights (and their scales) of part of a super-block, ready to meet each token's activations.</summary>
internal interface ITokenProduct
{
    /// <summary>Σ scale · weight · activation for the activations at <paramref name="a"/>, in int32 lanes (exact).</summary>
    Vector256<int> Apply(ref byte a);
}
