using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>A format of one-element blocks, loaded and widened to float32 in registers by the shared dot kernels.</summary>
internal interface IRowFormat : IWeightFormat
{
    static int IWeightFormat.BlockSize => 1;

    static abstract Vector512<float> Load512(ref byte row, nint index);
    static abstract Vector256<float> Load256(ref byte row, nint index);
    static abstract float Load1(ref byte row, nint index);
}
