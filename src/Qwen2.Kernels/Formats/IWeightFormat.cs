namespace Qwen2.Kernels;

/// <summary>
/// A stored weight format as a type: how its rows are cut into blocks (elements per block, bytes per block); the
/// <see cref="WeightType"/> member that names it maps to it in one place (<see cref="WeightTypes"/>). F32, BF16 and F16 are blocks of one element that the shared dot kernels widen
/// in registers (<see cref="IRowFormat"/>); a block-quantized format (Q8_0: 32 elements in 34 bytes; Q4_K: 256 in 144)
/// is one more such type, with its own dot product, and one more <see cref="WeightType"/> member that maps to it.
/// </summary>
internal interface IWeightFormat
{
    /// <summary>Elements per block; a row's length is a multiple of it.</summary>
    static abstract int BlockSize { get; }
    /// <summary>Bytes one block occupies.</summary>
    static abstract int BlockBytes { get; }
}
