namespace Qwen2.Kernels;

/// <summary>
/// A block-quantized weight format (ggml's layouts, read in place). Its dot product runs on activations quantized to
/// int8 per block (<see cref="Activation"/>): integer products summed exactly, then one float step per block in a fixed
/// order, so the scalar twin (<see cref="Isa.Scalar"/>) defines the result and every vector path returns the same bits.
/// </summary>
internal interface IQuantFormat : IWeightFormat
{
    /// <summary>The activation blocks this format's dot product reads.</summary>
    static abstract ActivationFormat Activation { get; }

    /// <summary>Widens one block to <see cref="IWeightFormat.BlockSize"/> floats, with ggml's dequantization arithmetic.</summary>
    static abstract void DequantizeBlock(ref byte block, Span<float> destination);

    /// <summary>
    /// The dot product of one row (<paramref name="blocks"/> weight blocks at <paramref name="w"/>) with one quantized
    /// activation vector (as many activation elements, at <paramref name="a"/>).
    /// </summary>
    static abstract float Dot(ref byte w, ref byte a, int blocks, Isa isa);

    /// <summary>
    /// One row against 1 to 4 tokens' activations (token t's blocks start <paramref name="aStride"/> bytes after token
    /// t − 1's): dst[t] is exactly <see cref="Dot"/> of the row with token t. A format may share the unpacking of its
    /// weights between the tokens.
    /// </summary>
    static abstract void DotTokens(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa);

    /// <summary>
    /// Four rows <paramref name="stride"/> bytes apart against one token: dst[k] is exactly <see cref="Dot"/> of row k.
    /// Decoding reads the rows as four streams, block by block, so all four are in flight at once.
    /// </summary>
    static abstract void Dot4Rows(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa);
}
