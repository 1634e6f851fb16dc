namespace Qwen2.Native.Tests;

/// <summary>
/// What the <see cref="CheckpointException"/> of a <see cref="LoadingErrorCase"/> must say: the file, the tensor and the
/// field at fault (null: none), and words of its message.
/// </summary>
internal sealed record ExpectedError(string File, string? Tensor, string? Field, params string[] Words)
{
    /// <summary>The checkpoint directory to load, when it is not the case's temporary directory.</summary>
    public string? Directory { get; init; }

    /// <summary>A safetensors file opened on its own (<see cref="SafeTensorsFile.Open"/>) instead of loading a checkpoint.</summary>
    public string? OpenFile { get; init; }

    /// <summary>A type the exception's inner exception must be assignable to, if any.</summary>
    public Type? Inner { get; init; }
}
