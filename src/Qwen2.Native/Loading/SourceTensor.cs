using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>One tensor as a source hands it to the loader: where it lives, its shape outermost first, its format.</summary>
internal readonly unsafe struct SourceTensor(string file, long[] shape, WeightType type, byte* data)
{
    public string File { get; } = file;
    public long[] Shape { get; } = shape;
    public WeightType Type { get; } = type;
    public byte* Data { get; } = data;
}
