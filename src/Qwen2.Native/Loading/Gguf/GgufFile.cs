using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// A memory-mapped GGUF file (version 2 or 3, little-endian): metadata, tensor table and data, checked whole when the
/// file opens (see the checks on the reader's rules in the remarks). Tensor data is never copied, only pointed into;
/// a tensor of any size is addressed through <see cref="Pointer"/>, never through one span.
/// </summary>
/// <remarks>
/// Refused with a <see cref="CheckpointException"/> naming the field or tensor: a wrong magic, version 1, a big-endian
/// or unknown version; counts, strings and arrays larger than the bytes left; duplicate keys or tensor names; a
/// <c>general.alignment</c> that is not a uint32 power of two; a tensor with 0 or more than 4 dimensions, a negative
/// dimension, a row that is not whole blocks, a size that overflows 64 bits, an offset that is not exactly the previous
/// tensor's padded end, or data past the end of the file; an unknown type id.
/// </remarks>
public sealed unsafe class GgufFile : IDisposable
{
    private readonly MappedFile _mapped;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

    private GgufFile(string path, long length, MappedFile mapped, GgufHeader header)
    {
        Path = path; FileLength = length; _mapped = mapped;
        Version = header.Version; Metadata = header.Metadata; Tensors = header.Tensors; Alignment = header.Alignment; DataStart = header.DataStart;
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Path of the file.</summary>
    public string Path { get; }

    /// <summary>Format version: 2 or 3.</summary>
    public uint Version { get; }

    /// <summary>Metadata entries by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>Tensors, in the file's order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Alignment of the data section and of every tensor in it (<c>general.alignment</c>, default 32).</summary>
    public int Alignment { get; }

    /// <summary>Byte offset of the data section in the file.</summary>
    public long DataStart { get; }

    /// <summary>Bytes in the file.</summary>
    public long FileLength { get; }

    /// <summary>Bytes from the data section's start to the end of the file.</summary>
    public long DataLength => FileLength - DataStart;

    /// <summary>Opens, checks and maps a GGUF file.</summary>
    /// <exception cref="CheckpointException">The file is missing, truncated or malformed; the message says where.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        long length = new FileInfo(path).Length;
        // A mapping cannot be empty, and no valid file is shorter than magic, version and the two counts.
        if (length < GgufHeaderReader.PreambleBytes + 16)
            throw new CheckpointException(path, $"file is {length} bytes, too short for a GGUF header", field: "magic");
        var mapped = new MappedFile(path);
        try
        {
            return new GgufFile(path, length, mapped, GgufHeaderReader.Read(path, mapped.Base, length));
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    /// <summary>Whether <paramref name="path"/> starts with the GGUF magic (false for a missing or short file).</summary>
    public static bool HasMagic(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            Span<byte> magic = stackalloc byte[4];
            return fs.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Finds a tensor by name.</summary>
    public bool TryGetTensor(string name, out GgufTensorInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>Maps a tensor's ggml type to the kernel format the engine computes with.</summary>
    /// <exception cref="CheckpointException">The type is one the engine does not support (Q2_K, Q3_K, IQ*, ...); the message names the tensor and type.</exception>
    public WeightType WeightTypeOf(GgufTensorInfo t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return GgmlTypeLayout.WeightTypeOf(t.Type)
            ?? throw new CheckpointException(Path, $"has type {t.Type}, which this engine does not support (supported: {GgmlTypeLayout.SupportedList})", t.Name, "type");
    }

    /// <summary>Address of the tensor's first byte inside the mapping.</summary>
    public byte* Pointer(GgufTensorInfo t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return _mapped.Base + DataStart + t.Offset;
    }

    /// <summary>The metadata reader over this file's metadata (typed lookups whose errors name the key).</summary>
    public GgufMetadata MetadataReader => new(Metadata, Path);

    /// <summary>Unmaps the file.</summary>
    public void Dispose() => _mapped.Dispose();
}
