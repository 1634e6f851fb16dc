namespace Qwen2.Native.Gguf;

/// <summary>How far <see cref="O:Qwen2.Native.Gguf.GgufExporter.Export"/> has got.</summary>
/// <param name="BytesWritten">Tensor data bytes written so far.</param>
/// <param name="TotalBytes">Tensor data bytes the file will hold.</param>
/// <param name="Tensor">The GGUF name of the tensor being written.</param>
public readonly record struct GgufExportProgress(long BytesWritten, long TotalBytes, string Tensor);
