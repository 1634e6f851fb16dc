using System.Text.Json;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// A memory-mapped <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header, then the data.
/// The header is checked whole when the file opens; tensor data is never copied, only pointed into.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted, as in the reference implementation (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, int> DTypeSizes = new()
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1, ["I16"] = 2, ["U16"] = 2, ["F16"] = 2,
        ["BF16"] = 2, ["I32"] = 4, ["U32"] = 4, ["F32"] = 4, ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    private readonly MappedFile _mapped;
    private readonly long _dataStart;

    /// <summary>Path of the file.</summary>
    public string Path { get; }

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>Bytes in the data section.</summary>
    public long DataLength { get; }

    private SafeTensorsFile(string path, Dictionary<string, TensorInfo> tensors, long dataStart, long dataLength)
    {
        Path = path; Tensors = tensors; _dataStart = dataStart; DataLength = dataLength;
        _mapped = new MappedFile(path);
    }

    /// <summary>Opens, checks and maps a safetensors file.</summary>
    /// <exception cref="CheckpointException">The file is missing, truncated or its header is inconsistent; the message says where.</exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        long fileLength;
        byte[] header;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            fileLength = fs.Length;
            if (fileLength < 8) throw new CheckpointException(path, $"file is {fileLength} bytes, too short for the 8-byte header length", field: "header length");
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong headerLength = BitConverter.ToUInt64(len);
            if (headerLength > (ulong)(fileLength - 8))
                throw new CheckpointException(path, $"header length {headerLength} runs past the end of the file ({fileLength} bytes)", field: "header length");
            if (headerLength > MaxHeaderBytes)
                throw new CheckpointException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit", field: "header length");
            header = new byte[headerLength];
            fs.ReadExactly(header);
        }
        long dataStart = 8 + header.Length, dataLength = fileLength - dataStart;
        var tensors = ParseHeader(path, header, dataLength);
        return new SafeTensorsFile(path, tensors, dataStart, dataLength);
    }

    private static Dictionary<string, TensorInfo> ParseHeader(string path, byte[] header, long dataLength)
    {
        // System.Text.Json checks UTF-8 only when a string is read (and then throws InvalidOperationException), so check it here.
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw new CheckpointException(path, "the header is not valid UTF-8", field: "header");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new CheckpointException(path, $"malformed JSON header: {e.Message}", field: "header", inner: e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, "the header must be a JSON object", field: "header");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            try
            {
                foreach (var prop in doc.RootElement.EnumerateObject())
                {
                    if (prop.Name == "__metadata__")
                    {
                        CheckMetadata(path, prop.Value);
                        continue;
                    }
                    var info = ParseEntry(path, prop.Name, prop.Value, dataLength);
                    if (!tensors.TryAdd(prop.Name, info)) throw new CheckpointException(path, "is listed twice in the header", prop.Name);
                }
            }
            catch (InvalidOperationException e)
            {
                // a string escape that is not valid UTF-16, e.g. a lone surrogate "\ud800"
                throw new CheckpointException(path, $"the header holds an invalid string: {e.Message}", field: "header", inner: e);
            }
            // The data section must be covered exactly, in order: no overlaps, no gaps, nothing after the last tensor.
            long expected = 0;
            TensorInfo? previous = null;
            foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
            {
                if (t.Begin < expected)
                    throw new CheckpointException(path, $"bytes [{t.Begin}, {t.End}) overlap tensor '{previous!.Name}' at [{previous.Begin}, {previous.End})", t.Name, "data_offsets");
                if (t.Begin > expected)
                    throw new CheckpointException(path, $"starts at byte {t.Begin}, leaving a gap after byte {expected}", t.Name, "data_offsets");
                expected = t.End;
                previous = t;
            }
            if (expected != dataLength)
                throw new CheckpointException(path, $"the tensors cover {expected} bytes of data but the data section holds {dataLength}", field: "data_offsets");
            return tensors;
        }
    }

    /// <summary>
    /// <c>__metadata__</c> is a map of strings to strings (or null), as the reference implementation reads it; a file
    /// that holds anything else there is refused rather than half-read.
    /// </summary>
    private static void CheckMetadata(string path, JsonElement metadata)
    {
        if (metadata.ValueKind == JsonValueKind.Null) return;
        if (metadata.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, $"is {metadata.ValueKind}, expected an object of strings", field: "__metadata__");
        foreach (var p in metadata.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException(path, $"value of key '{p.Name}' is {p.Value.ValueKind}, expected a string", field: "__metadata__");
            _ = p.Value.GetString(); // a lone surrogate escape throws here, inside the caller's InvalidOperationException handler
        }
    }

    private static TensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, "header entry is not an object", name);
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new CheckpointException(path, "has no string 'dtype'", name, "dtype");
        string dtype = dt.GetString()!;
        if (!DTypeSizes.TryGetValue(dtype, out int size)) throw new CheckpointException(path, $"has unknown dtype '{dtype}'", name, "dtype");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new CheckpointException(path, "has no 'shape' array", name, "shape");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new CheckpointException(path, $"has shape {sh.GetRawText()}; dimensions must be non-negative integers", name, "shape");
            shape[i++] = v;
            if (v != 0 && count > long.MaxValue / size / v)
                throw new CheckpointException(path, $"has shape {sh.GetRawText()}, too many elements to address", name, "shape");
            count *= v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new CheckpointException(path, "has no 'data_offsets' pair", name, "data_offsets");
        long begin = Offset(path, name, off[0]), end = Offset(path, name, off[1]);
        if (end < begin) throw new CheckpointException(path, $"data_offsets [{begin}, {end}] end before they begin", name, "data_offsets");
        if (end > dataLength)
            throw new CheckpointException(path, $"data_offsets [{begin}, {end}] lie outside the {dataLength}-byte data section", name, "data_offsets");
        long bytes = count * size;
        if (end - begin != bytes)
            throw new CheckpointException(path, $"shape {sh.GetRawText()} of {dtype} needs {bytes} bytes but data_offsets [{begin}, {end}] hold {end - begin}", name, "data_offsets");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static long Offset(string path, string name, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long o) && o >= 0 ? o
            : throw new CheckpointException(path, $"data offset {v.GetRawText()} is not a non-negative integer", name, "data_offsets");

    /// <summary>Maps a tensor's stored dtype to a kernel weight type.</summary>
    /// <exception cref="CheckpointException">The dtype is not F32, BF16 or F16.</exception>
    public WeightType WeightTypeOf(TensorInfo t) => t.DType switch
    {
        "F32" => WeightType.F32,
        "BF16" => WeightType.BF16,
        "F16" => WeightType.F16,
        _ => throw new CheckpointException(Path, $"has dtype {t.DType}; supported dtypes are F32, BF16 and F16", t.Name, "dtype"),
    };

    /// <summary>Address of the tensor's first byte inside the mapping.</summary>
    public byte* Pointer(TensorInfo t) => _mapped.Base + _dataStart + t.Begin;

    /// <summary>Unmaps the file.</summary>
    public void Dispose() => _mapped.Dispose();
}
