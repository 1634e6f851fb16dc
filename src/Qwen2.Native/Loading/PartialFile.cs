namespace Qwen2.Native;

/// <summary>
/// A large file written as <c>PATH.partial</c> and renamed to <c>PATH</c> only once complete, so a failed, cancelled or
/// abandoned write never leaves a truncated file under the real name (and never replaces a good one).
/// </summary>
internal sealed class PartialFile : IDisposable
{
    private readonly string _partialPath;
    private FileStream? _stream;

    /// <summary>Creates <c>PATH.partial</c> with room for <paramref name="expectedBytes"/>.</summary>
    public PartialFile(string path, long expectedBytes)
    {
        Path = path;
        _partialPath = path + ".partial";
        // Preallocating makes a full disk fail here, before gigabytes are written, on file systems that support it.
        _stream = new FileStream(_partialPath, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 1 << 20,
            PreallocationSize = expectedBytes,
        });
    }

    /// <summary>The final path.</summary>
    public string Path { get; }

    /// <summary>Whether <see cref="Commit"/> has renamed the file into place.</summary>
    public bool Committed { get; private set; }

    /// <summary>The stream to write to; null once committed or abandoned.</summary>
    public FileStream? Stream => _stream;

    /// <summary>Closes the file and renames it to <see cref="Path"/>, replacing any file there.</summary>
    public void Commit()
    {
        var stream = _stream ?? throw new InvalidOperationException($"'{Path}' is already {(Committed ? "complete" : "abandoned")}");
        stream.Flush(flushToDisk: false);
        stream.Dispose();
        _stream = null;
        File.Move(_partialPath, Path, overwrite: true);
        Committed = true;
    }

    /// <summary>Closes the file and, unless it was committed, deletes it.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!Committed && File.Exists(_partialPath)) File.Delete(_partialPath);
    }
}
