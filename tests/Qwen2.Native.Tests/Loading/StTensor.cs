namespace Qwen2.Native.Tests;

/// <summary>One tensor of an <see cref="StFile"/>: header fields kept as JSON text so they can be made invalid.</summary>
internal sealed class StTensor(string name, string dtype, string shape, byte[] data)
{
    public string Name { get; set; } = name;
    public string DType { get; set; } = dtype;
    /// <summary>The shape as JSON, e.g. "[64, 32]".</summary>
    public string Shape { get; set; } = shape;
    public byte[] Data { get; set; } = data;
    /// <summary>Offsets to write instead of the true ones, or null.</summary>
    public long[]? Offsets { get; set; }
}
