namespace Qwen2.Native.Gguf;

/// <summary>What <see cref="O:Qwen2.Native.Gguf.GgufExporter.Export"/> wrote.</summary>
/// <param name="Path">The GGUF file.</param>
/// <param name="Type">Element type of the matrices.</param>
/// <param name="TensorCount">Tensors in the file.</param>
/// <param name="TokenCount">Entries of <c>tokenizer.ggml.tokens</c> (the config's vocab_size).</param>
/// <param name="FileBytes">Size of the file.</param>
/// <param name="Elapsed">Time taken.</param>
public sealed record GgufExportResult(string Path, GgufFileType Type, int TensorCount, int TokenCount, long FileBytes, TimeSpan Elapsed);
