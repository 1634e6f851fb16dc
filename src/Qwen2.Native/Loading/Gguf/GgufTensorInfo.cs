namespace Qwen2.Native;

/// <summary>One tensor's entry in a GGUF file's tensor table.</summary>
/// <param name="Name">Tensor name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Type">Element type as the file gives it.</param>
/// <param name="Dimensions">ggml's <c>ne</c>: innermost first, so <c>Dimensions[0]</c> is the row length (columns).</param>
/// <param name="Offset">First byte, relative to the start of the data section.</param>
/// <param name="ByteCount">Bytes the tensor's data occupies (padding excluded).</param>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Dimensions, long Offset, long ByteCount)
{
    /// <summary>The dimensions outermost first, as PyTorch and safetensors give them (<c>[rows, columns]</c> for a matrix).</summary>
    public long[] Shape => Dimensions.Reverse().ToArray();

    /// <summary>Number of elements.</summary>
    public long ElementCount => Dimensions.Aggregate(1L, (a, d) => a * d);

    /// <summary>The shape, outermost first, as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
