using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// One vector path of a K-quant format, split where <see cref="KQuant.Run{TB, TN}"/> joins them: the exact integer
/// work of a super-block for 1 to 4 tokens (the weights unpacked once), then the scalar twin's float steps per token.
/// </summary>
internal interface ISuperBlockKernel
{
    /// <summary>Bytes per weight super-block.</summary>
    static abstract int SuperBlockBytes { get; }

    /// <summary>
    /// Adds the integer products of the super-block at <paramref name="block"/> with each token's activation block
    /// (token t's at <paramref name="a"/> + t · <paramref name="aStride"/>) to <paramref name="sums"/>, and returns the
    /// unpacked scales <see cref="Step"/> needs.
    /// </summary>
    static abstract Vector256<short> Sums<TN>(ref byte block, ref byte a, nint aStride, ref TokenSums sums) where TN : struct, ITokens;

    /// <summary>True where <see cref="Sums4Rows"/> has a kernel of its own; else four rows take <see cref="Sums{TN}"/> each.</summary>
    static virtual bool FourRows => false;

    /// <summary>
    /// <see cref="Sums{TN}"/> of one token against the super-blocks of four rows (<paramref name="stride"/> apart, the
    /// first at <paramref name="block"/>): row k's sums added to lane set k of <paramref name="sums"/> (S0 to S3), its
    /// scales returned in <paramref name="scales0"/> to <paramref name="scales3"/>. Where <see cref="FourRows"/>.
    /// </summary>
    static virtual void Sums4Rows(ref byte block, nint stride, ref byte a, ref TokenSums sums,
        out Vector256<short> scales0, out Vector256<short> scales1, out Vector256<short> scales2, out Vector256<short> scales3) =>
        throw new NotSupportedException("this kernel has no four-row sums");

    /// <summary>Adds one token's super-block to <paramref name="acc"/>: the rest of its exact integer sums, then its float steps.</summary>
    static abstract void Step(ref float acc, Vector256<int> sums, Vector256<short> scales, ref byte block, ref byte activationBlock);

    /// <summary>
    /// <see cref="Step"/> of four rows (<paramref name="stride"/> apart, the first at <paramref name="block"/>) with one
    /// token, row k's sums in lane set k of <paramref name="sums"/>, its scales in <paramref name="scales0"/> to
    /// <paramref name="scales3"/> and its accumulator in lane k of <paramref name="acc"/>. Each lane runs the scalar
    /// twin's expressions, so its bits are <see cref="Step"/>'s (<see cref="KQuant.StepEach{TB}"/> is that, row by row).
    /// </summary>
    static abstract Vector128<float> Step4(Vector128<float> acc, in TokenSums sums, Vector256<short> scales0, Vector256<short> scales1,
        Vector256<short> scales2, Vector256<short> scales3, ref byte block, nint stride, ref byte activationBlock);
}
