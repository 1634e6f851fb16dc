namespace Qwen2.Native;

/// <summary>The parsed, checked header of a GGUF file.</summary>
internal sealed record GgufHeader(
    uint Version,
    IReadOnlyDictionary<string, GgufValue> Metadata,
    IReadOnlyList<GgufTensorInfo> Tensors,
    int Alignment,
    long DataStart);
