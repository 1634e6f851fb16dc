namespace Qwen2.Native;

/// <summary>How far <see cref="SyntheticCheckpoint.Write"/> has got.</summary>
/// <param name="BytesWritten">Bytes of <c>model.safetensors</c> data written so far.</param>
/// <param name="TotalBytes">Bytes of data the file will hold.</param>
/// <param name="Tensor">The tensor being written.</param>
public readonly record struct SyntheticProgress(long BytesWritten, long TotalBytes, string Tensor);
