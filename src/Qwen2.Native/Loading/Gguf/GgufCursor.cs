using System.Buffers.Binary;
using System.Text;

namespace Qwen2.Native;

/// <summary>
/// Reads little-endian GGUF primitives from mapped memory, never past <c>length</c>: every read first checks the bytes
/// left, so a count or length in the file can only ever be compared, never trusted (the lesson of CVE-2024-21802 and
/// CVE-2025-53630, where an unchecked size led to reads or allocations past the buffer).
/// </summary>
internal unsafe ref struct GgufCursor
{
    private readonly byte* _base;
    private readonly long _length;
    private readonly string _path;

    public GgufCursor(byte* data, long length, string path)
    {
        _base = data; _length = length; _path = path;
    }

    /// <summary>Position from the start of the file.</summary>
    public long Position { get; private set; }

    /// <summary>Bytes after <see cref="Position"/>.</summary>
    public readonly long Remaining => _length - Position;

    private ReadOnlySpan<byte> Take(long count, string what, string? field, string? tensor)
    {
        if (count < 0 || count > Remaining)
            throw new CheckpointException(_path, $"{what} needs {count} bytes at offset {Position}, but the file has {Remaining} left", tensor, field);
        var span = new ReadOnlySpan<byte>(_base + Position, (int)count);
        Position += count;
        return span;
    }

    public uint UInt32(string what, string? field = null, string? tensor = null) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what, field, tensor));

    public ulong UInt64(string what, string? field = null, string? tensor = null) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what, field, tensor));

    public long Int64(string what, string? field = null, string? tensor = null) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, what, field, tensor));

    /// <summary>Bytes of a fixed-size scalar.</summary>
    public ReadOnlySpan<byte> Bytes(int count, string what, string? field = null) => Take(count, what, field, null);

    /// <summary>A string: a 64-bit byte length, at most <paramref name="maxBytes"/> and the bytes left, then UTF-8 (checked).</summary>
    public string String(string what, long maxBytes, string? field = null, string? tensor = null)
    {
        ulong length = UInt64(what + " length", field, tensor);
        if (length > (ulong)Math.Min(maxBytes, int.MaxValue))
            throw new CheckpointException(_path, $"{what} is {length} bytes long at offset {Position - 8}; the limit is {Math.Min(maxBytes, int.MaxValue)}", tensor, field);
        var bytes = Take((long)length, what, field, tensor);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new CheckpointException(_path, $"{what} at offset {Position - (long)length} is not valid UTF-8", tensor, field);
        return Encoding.UTF8.GetString(bytes);
    }
}
