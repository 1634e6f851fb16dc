namespace Qwen2.Native;

/// <summary>
/// A checkpoint file or its configuration is unusable. The message names the file and, where one is at fault,
/// the tensor or the config field; the same facts are in <see cref="FilePath"/>, <see cref="TensorName"/> and <see cref="Field"/>.
/// </summary>
public sealed class CheckpointException : Exception
{
    /// <summary>Creates an error about <paramref name="filePath"/>.</summary>
    public CheckpointException(string filePath, string message, string? tensorName = null, string? field = null, Exception? inner = null)
        : base(Compose(filePath, message, tensorName, field), inner)
    {
        FilePath = filePath; TensorName = tensorName; Field = field;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>The tensor at fault, if any.</summary>
    public string? TensorName { get; }

    /// <summary>The config or header field at fault, if any.</summary>
    public string? Field { get; }

    private static string Compose(string file, string message, string? tensor, string? field)
    {
        var where = tensor is not null ? $"tensor '{tensor}' in '{file}'" : field is not null ? $"field '{field}' in '{file}'" : $"'{file}'";
        return $"{where}: {message}";
    }
}
