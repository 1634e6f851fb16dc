using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>How one stored element type is loaded and widened to float32 in registers.</summary>
internal interface IRowFormat
{
    static abstract Vector512<float> Load512(ref byte row, nint index);
    static abstract Vector256<float> Load256(ref byte row, nint index);
    static abstract float Load1(ref byte row, nint index);
    /// <summary>Bytes per stored element.</summary>
    static abstract int ElementBytes { get; }
}
