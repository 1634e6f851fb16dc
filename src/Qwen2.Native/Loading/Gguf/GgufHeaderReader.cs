namespace Qwen2.Native;

/// <summary>
/// Parses and checks a GGUF v2/v3 header: magic, version, metadata, tensor infos, alignment and data layout. What is
/// refused, and why (the lessons of llama.cpp's GGUF CVEs: CVE-2024-21802 and CVE-2025-53630 trusted counts and sizes
/// from the file, CVE-2026-27940 and CVE-2026-33298 overflowed size arithmetic and offsets):
/// every count and length is compared with the bytes left before it sizes anything; element counts, byte sizes and
/// padding use checked arithmetic; <c>general.alignment</c> is a uint32 power of two; each tensor's offset is exactly
/// where the previous one ends, padded to the alignment, and its data lies inside the file; at most four dimensions,
/// none negative, the innermost a whole number of blocks; keys and tensor names are unique, non-empty UTF-8.
/// </summary>
internal static unsafe class GgufHeaderReader
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    private const uint Magic = 0x46554747;
    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    public const int MaxDimensions = 4;
    /// <summary>ggml's GGML_MAX_NAME is 64 bytes with the terminating NUL.</summary>
    public const int MaxTensorNameBytes = 63;
    /// <summary>Longest metadata key accepted.</summary>
    public const int MaxKeyBytes = 65535;
    /// <summary>Smallest metadata entry: key length, a one-byte key, the type tag, a one-byte value.</summary>
    private const int MinEntryBytes = 8 + 1 + 4 + 1;
    /// <summary>Smallest tensor info: name length, a one-byte name, n_dims, one dimension, type, offset.</summary>
    private const int MinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
    /// <summary>Bytes before the counts: magic, version.</summary>
    public const int PreambleBytes = 8;

    public static GgufHeader Read(string path, byte* data, long length)
    {
        var c = new GgufCursor(data, length, path);
        uint magic = c.UInt32("magic", "magic");
        if (magic != Magic)
            throw new CheckpointException(path, $"does not start with the GGUF magic (found 0x{magic:X8}); it is not a GGUF file", field: "magic");
        uint version = c.UInt32("version", "version");
        if (version is not (2 or 3))
        {
            string why = (version & 0xFFFF) == 0 && version != 0
                ? $"version {version} looks like a big-endian file (0x{version:X8}); only little-endian GGUF is supported"
                : version == 1 ? "version 1 (32-bit counts, before August 2023) is not supported; convert the model again"
                : $"version {version} is not supported (only 2 and 3)";
            throw new CheckpointException(path, why, field: "version");
        }
        ulong tensorCount = c.UInt64("tensor count", "tensor_count");
        ulong kvCount = c.UInt64("metadata count", "metadata_kv_count");
        if (kvCount > (ulong)(c.Remaining / MinEntryBytes))
            throw new CheckpointException(path, $"{kvCount} metadata entries cannot fit in the {c.Remaining} bytes left", field: "metadata_kv_count");
        if (tensorCount > (ulong)(c.Remaining / MinTensorInfoBytes))
            throw new CheckpointException(path, $"{tensorCount} tensor infos cannot fit in the {c.Remaining} bytes left", field: "tensor_count");

        // Not presized from the counts: they only passed the bytes-left check, and a large file could still claim millions.
        var metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = c.String($"metadata key {i}", MaxKeyBytes, "metadata");
            if (key.Length == 0) throw new CheckpointException(path, $"metadata key {i} is empty", field: "metadata");
            var type = GgufValueReader.Tag(ref c, path, key, "value type");
            var value = GgufValueReader.Read(ref c, path, key, type);
            if (!metadata.TryAdd(key, value)) throw new CheckpointException(path, "is given twice in the metadata", field: key);
        }
        int alignment = Alignment(path, metadata);

        var tensors = new List<GgufTensorInfo>((int)Math.Min(tensorCount, 4096));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            var t = TensorInfo(ref c, path, i);
            if (!names.Add(t.Name)) throw new CheckpointException(path, "is listed twice in the tensor table", t.Name);
            tensors.Add(t);
        }

        long dataStart = Pad(path, c.Position, alignment, "data section");
        long expected = 0;
        foreach (var t in tensors)
        {
            if (t.Offset != expected)
                throw new CheckpointException(path, $"starts at data offset {t.Offset}, expected {expected} (the previous tensor's end, padded to the alignment of {alignment})", t.Name, "offset");
            // offset equals the previous end, which lies inside the file, so these differences cannot overflow.
            if (dataStart > length || t.ByteCount > length - dataStart - t.Offset)
                throw new CheckpointException(path, $"{t.ByteCount} bytes at data offset {t.Offset} (the data section starts at byte {dataStart}) run past the end of the {length}-byte file", t.Name, "offset");
            expected = Pad(path, t.Offset + t.ByteCount, alignment, t.Name);
        }
        return new GgufHeader(version, metadata, tensors, alignment, dataStart);
    }

    private static int Alignment(string path, Dictionary<string, GgufValue> metadata)
    {
        const string key = "general.alignment";
        if (!metadata.TryGetValue(key, out var v)) return 32;
        if (v.Type != GgufMetadataType.UInt32) throw new CheckpointException(path, $"is {v.Describe()}, expected uint32", field: key);
        uint a = (uint)v.Value;
        if (a == 0 || (a & (a - 1)) != 0 || a > 1u << 30)
            throw new CheckpointException(path, $"is {a}; it must be a power of two (at most 2^30)", field: key);
        return (int)a;
    }

    private static long Pad(string path, long offset, int alignment, string what)
    {
        long padded = offset + (alignment - 1);
        if (padded < offset) throw new CheckpointException(path, $"{what}: offset {offset} overflows when padded to {alignment}", field: "offset");
        return padded & ~(long)(alignment - 1);
    }

    private static GgufTensorInfo TensorInfo(ref GgufCursor c, string path, ulong index)
    {
        string name = c.String($"name of tensor {index}", MaxTensorNameBytes, "tensor name");
        if (name.Length == 0) throw new CheckpointException(path, $"tensor {index} has an empty name", field: "tensor name");
        uint nDims = c.UInt32("n_dims", "n_dims", name);
        if (nDims is 0 or > MaxDimensions)
            throw new CheckpointException(path, $"has {nDims} dimensions; GGUF tensors have 1 to {MaxDimensions}", name, "n_dims");
        var dims = new long[nDims];
        for (int d = 0; d < nDims; d++)
        {
            dims[d] = c.Int64($"dimension {d}", "ne", name);
            if (dims[d] < 0) throw new CheckpointException(path, $"dimension {d} is {dims[d]}; dimensions cannot be negative", name, "ne");
        }
        uint rawType = c.UInt32("type", "type", name);
        var type = (GgmlType)rawType;
        if (!GgmlTypeLayout.IsKnown(type))
            throw new CheckpointException(path, $"has type id {rawType}, which is not a ggml type this reader knows", name, "type");
        long offset = c.Int64("offset", "offset", name);
        if (offset < 0) throw new CheckpointException(path, $"has offset {offset}", name, "offset");

        int block = GgmlTypeLayout.BlockSize(type);
        if (dims[0] % block != 0)
            throw new CheckpointException(path, $"has rows of {dims[0]} elements, not a whole number of {type} blocks of {block}", name, "ne");
        long count = 1;
        foreach (long d in dims)
        {
            if (d != 0 && count > long.MaxValue / d)
                throw new CheckpointException(path, $"shape [{string.Join(", ", dims)}] has more elements than 64 bits count", name, "ne");
            count *= d;
        }
        long bytes;
        try { bytes = checked(count / block * GgmlTypeLayout.BlockBytes(type)); }
        catch (OverflowException e) { throw new CheckpointException(path, $"shape [{string.Join(", ", dims)}] of {type} needs more bytes than 64 bits count", name, "ne", e); }
        return new GgufTensorInfo(name, type, dims, offset, bytes);
    }
}
