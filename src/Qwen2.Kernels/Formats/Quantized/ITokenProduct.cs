using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>Unpacked weights (and their scales) of part of a super-block, ready to meet each token's activations.</summary>
internal interface ITokenProduct
{
    /// <summary>
    /// <paramref name="sums"/> plus Σ scale · weight · activation for the activations at <paramref name="a"/>, in int32
    /// lanes (exact), so a kernel with vpdpwssd adds its scale products into the sums in the same instruction.
    /// </summary>
    Vector256<int> AddTo(Vector256<int> sums, ref byte a);
}
