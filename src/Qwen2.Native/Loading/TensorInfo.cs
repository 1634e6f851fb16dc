namespace Qwen2.Native;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Dtype as the header spells it (F32, BF16, F16, I64, ...).</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Begin">First byte, relative to the start of the data section.</param>
/// <param name="End">One past the last byte.</param>
public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>The shape as "[a, b]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
