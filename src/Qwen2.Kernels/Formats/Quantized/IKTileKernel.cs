using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// One K-quant format's pieces of the 256-bit prefill tile (<see cref="KTile"/>): a super-block as eight vectors of 32
/// unsigned values with one int16 scale vector each, and the float steps of a super-block for all (row, token) pairs
/// at once, each lane the scalar twin's expressions.
/// </summary>
internal unsafe interface IKTileKernel
{
    /// <summary>Bytes per weight super-block.</summary>
    static abstract int SuperBlockBytes { get; }

    /// <summary>True when the integer sums start from an offset term (Q6_K's −32 · Σ_g sc_g · bsum_g), false when from zero.</summary>
    static abstract bool HasOffset { get; }

    /// <summary>
    /// Writes the int16 scales vector k of the super-block at <paramref name="block"/> meets (after pair sums) to
    /// <paramref name="scales"/>[k], k &lt; 8, and returns what <see cref="Step"/> needs of the row: where
    /// <see cref="HasOffset"/>, the int16 lanes that, multiplied-and-added with a token's 16 group sums, give its offset.
    /// </summary>
    static abstract Vector256<short> Scales(ref byte block, Vector256<short>* scales);

    /// <summary>
    /// Prepares <see cref="Values"/> of the super-block at <paramref name="block"/>: writes its eight vectors to
    /// <paramref name="values"/> where unpacking them together is cheaper than one at a time, or nothing.
    /// </summary>
    static abstract void Unpack(ref byte block, Vector256<byte>* values);

    /// <summary>Elements 32k .. 32k + 31 of the super-block at <paramref name="block"/> as unsigned values, after <see cref="Unpack"/> into <paramref name="values"/>.</summary>
    static abstract Vector256<byte> Values(ref byte block, Vector256<byte>* values, int k);

    /// <summary>The super-block's float scales as float32: d, and dmin (0 for a format without minimums).</summary>
    static abstract (float D, float DMin) RowScales(ref byte block);

    /// <summary>
    /// The super-block's float steps for two rows (whose <see cref="Scales"/> returned <paramref name="r0"/>,
    /// <paramref name="r1"/>, and whose <see cref="RowScales"/> are <paramref name="d"/> and <paramref name="dmin"/>,
    /// as <see cref="KTile.PerRow"/> lays them out) and the four tokens whose activation blocks start at
    /// <paramref name="a"/>, <paramref name="aStride"/> apart: lane 4r + t of <paramref name="acc"/> and
    /// <paramref name="sumi"/> is row r, token t.
    /// </summary>
    static abstract Vector256<float> Step(Vector256<float> acc, Vector256<int> sumi, Vector256<short> r0, Vector256<short> r1,
        Vector256<float> d, Vector256<float> dmin, ref byte a, nint aStride);
}
