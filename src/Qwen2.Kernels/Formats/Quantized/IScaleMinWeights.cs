using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Q4_K and Q5_K: d, dmin and 12 bytes of 6-bit scales and minimums for 8 sub-blocks of 32 at the start of the
/// super-block, and values that differ only in how many bits they have (see <see cref="ScaleMinKernels"/>).
/// </summary>
internal interface IScaleMinWeights
{
    /// <summary>Bytes per super-block.</summary>
    static abstract int SuperBlockBytes { get; }

    /// <summary>
    /// True when <see cref="KTile"/> should unpack a super-block's chunks once into memory (their sub-blocks share
    /// loads the JIT would otherwise keep in registers), false when each sub-block is cheaper unpacked where it is used.
    /// </summary>
    static abstract bool UnpackTogether { get; }

    /// <summary>Unsigned values of sub-blocks 2c (<c>Low</c>) and 2c + 1 (<c>High</c>) of the super-block at <paramref name="block"/>.</summary>
    static abstract (Vector256<byte> Low, Vector256<byte> High) Chunk256(ref byte block, int c);

    /// <summary>Unsigned values of sub-blocks 2c and 2c + 1, in element order.</summary>
    static abstract Vector512<byte> Chunk512(ref byte block, int c);
}
