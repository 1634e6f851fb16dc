using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>The integer sums of up to four tokens over one super-block (lanes added in any order: they are exact).</summary>
internal struct TokenSums
{
    /// <summary>Token 0's lanes.</summary>
    public Vector256<int> S0;
    /// <summary>Token 1's lanes.</summary>
    public Vector256<int> S1;
    /// <summary>Token 2's lanes.</summary>
    public Vector256<int> S2;
    /// <summary>Token 3's lanes.</summary>
    public Vector256<int> S3;
}
