using System.Runtime.InteropServices;
using System.Text.Json;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// Writes a <c>.safetensors</c> file tensor by tensor without holding the data in memory: the header (all tensors
/// declared up front, in data order) goes out when the writer is created, then each tensor's bytes are appended with
/// <see cref="Write(ReadOnlySpan{byte})"/> in any number of chunks, and <see cref="Complete"/> finishes the file.
/// The file is built under a <c>.partial</c> name and renamed into place by <see cref="Complete"/>, so a failed or
/// abandoned write never leaves a truncated checkpoint behind (disposing without completing deletes it).
/// Not thread-safe: one caller writes at a time.
/// </summary>
public sealed class SafeTensorsWriter : IDisposable
{
    /// <summary>The metadata Hugging Face writes for PyTorch checkpoints, used when none is given.</summary>
    public static IReadOnlyDictionary<string, string> PyTorchMetadata { get; } = new Dictionary<string, string> { ["format"] = "pt" };

    private readonly TensorSpec[] _tensors;
    private readonly long[] _ends; // cumulative end offset of each tensor in the data section
    private readonly PartialFile _file;
    private int _current;
    private long _written;

    /// <summary>Path the finished file will have.</summary>
    public string Path { get; }

    /// <summary>The tensors, in data order.</summary>
    public IReadOnlyList<TensorSpec> Tensors => _tensors;

    /// <summary>Bytes of the header section: the 8-byte length plus the padded JSON.</summary>
    public long HeaderBytes { get; }

    /// <summary>Bytes of the data section: every tensor's bytes.</summary>
    public long DataBytes => _ends.Length == 0 ? 0 : _ends[^1];

    /// <summary>Size of the finished file.</summary>
    public long TotalBytes => HeaderBytes + DataBytes;

    /// <summary>Data bytes written so far.</summary>
    public long BytesWritten => _written;

    /// <summary>The tensor whose bytes <see cref="Write(ReadOnlySpan{byte})"/> appends next, or null when all are written.</summary>
    public TensorSpec? Current => _current < _tensors.Length ? _tensors[_current] : null;

    /// <summary>Bytes the current tensor still needs.</summary>
    public long CurrentRemaining => _current < _tensors.Length ? _ends[_current] - _written : 0;

    /// <summary>Creates <paramref name="path"/> (as <c>path.partial</c> until completed) and writes the header.</summary>
    /// <param name="path">The file to write; an existing file is replaced only when <see cref="Complete"/> succeeds.</param>
    /// <param name="tensors">Every tensor, in the order their data will be written; names must be unique and non-empty.</param>
    /// <param name="metadata">The <c>__metadata__</c> strings; null writes <see cref="PyTorchMetadata"/>, an empty dictionary writes none.</param>
    /// <exception cref="ArgumentException">A tensor name is empty, repeated or reserved, or a dimension is negative.</exception>
    public SafeTensorsWriter(string path, IEnumerable<TensorSpec> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        Path = path;
        _tensors = tensors.ToArray();
        _ends = Layout(_tensors);
        byte[] header = Header(_tensors, _ends, metadata ?? PyTorchMetadata);
        HeaderBytes = 8 + header.Length;
        _file = new PartialFile(path, TotalBytes);
        try
        {
            Span<byte> length = stackalloc byte[8];
            BitConverter.TryWriteBytes(length, (ulong)header.Length);
            if (!BitConverter.IsLittleEndian) length.Reverse();
            _file.Stream!.Write(length);
            _file.Stream.Write(header);
            SkipEmpty();
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Size of the file a writer would produce for <paramref name="tensors"/>, without writing anything.</summary>
    /// <exception cref="ArgumentException">As for the constructor.</exception>
    public static long FileSize(IEnumerable<TensorSpec> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var array = tensors.ToArray();
        var ends = Layout(array);
        return 8 + Header(array, ends, metadata ?? PyTorchMetadata).Length + (ends.Length == 0 ? 0 : ends[^1]);
    }

    /// <summary>Checks the tensors and returns each one's end offset in the data section.</summary>
    private static long[] Layout(TensorSpec[] tensors)
    {
        var ends = new long[tensors.Length];
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        for (int i = 0; i < tensors.Length; i++)
        {
            var t = tensors[i] ?? throw new ArgumentException($"tensor {i} is null", nameof(tensors));
            if (string.IsNullOrEmpty(t.Name)) throw new ArgumentException($"tensor {i} has an empty name", nameof(tensors));
            if (t.Name == "__metadata__") throw new ArgumentException("tensor name \"__metadata__\" is reserved for the header's metadata", nameof(tensors));
            if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' is listed twice", nameof(tensors));
            ArgumentNullException.ThrowIfNull(t.Shape, $"{nameof(tensors)}[{i}].Shape");
            foreach (long d in t.Shape)
                if (d < 0) throw new ArgumentException($"tensor '{t.Name}' has a negative dimension in shape [{string.Join(", ", t.Shape)}]", nameof(tensors));
            offset = checked(offset + t.ByteCount);
            ends[i] = offset;
        }
        return ends;
    }

    /// <summary>The JSON header padded with spaces to a multiple of 8 bytes, as Hugging Face's writer pads it.</summary>
    private static byte[] Header(TensorSpec[] tensors, long[] ends, IReadOnlyDictionary<string, string> metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long begin = 0;
            for (int i = 0; i < tensors.Length; i++)
            {
                json.WriteStartObject(tensors[i].Name);
                json.WriteString("dtype", TensorSpec.HeaderName(tensors[i].DType));
                json.WriteStartArray("shape");
                foreach (long d in tensors[i].Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(begin);
                json.WriteNumberValue(ends[i]);
                json.WriteEndArray();
                json.WriteEndObject();
                begin = ends[i];
            }
            json.WriteEndObject();
        }
        int pad = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < pad; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    /// <summary>Appends bytes to the current tensor; a chunk may not run past its end (start the next tensor with a new call).</summary>
    /// <exception cref="InvalidOperationException">All tensors are written, the chunk runs past the current tensor, or the writer is completed.</exception>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        var stream = _file.Stream ?? throw new InvalidOperationException($"'{Path}' is already {(_file.Committed ? "completed" : "disposed")}; nothing more can be written");
        if (bytes.IsEmpty) return;
        if (_current >= _tensors.Length)
            throw new InvalidOperationException($"'{Path}': all {_tensors.Length} tensors are written; {bytes.Length} more bytes were given");
        long remaining = _ends[_current] - _written;
        if (bytes.Length > remaining)
            throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' in '{Path}' needs {remaining} more bytes; a chunk of {bytes.Length} was given");
        stream.Write(bytes);
        _written += bytes.Length;
        SkipEmpty();
    }

    /// <summary>
    /// Appends float32 values to the current tensor, converted to its dtype (bfloat16 and float16 round to nearest even);
    /// like a byte chunk, the values may not run past the current tensor.
    /// </summary>
    /// <exception cref="InvalidOperationException">As for <see cref="Write(ReadOnlySpan{byte})"/>.</exception>
    public void Write(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) return;
        if (Current is { } t && (long)values.Length * WeightTypes.SizeOf(t.DType) > CurrentRemaining)
            throw new InvalidOperationException($"tensor '{t.Name}' in '{Path}' needs {CurrentRemaining / WeightTypes.SizeOf(t.DType)} more elements; {values.Length} values were given");
        var type = Current?.DType ?? WeightType.F32;
        if (type == WeightType.F32)
        {
            Write(MemoryMarshal.AsBytes(values));
            return;
        }
        Span<ushort> converted = stackalloc ushort[4096];
        while (!values.IsEmpty)
        {
            int n = Math.Min(values.Length, converted.Length);
            Narrow(type, values[..n], converted);
            Write(MemoryMarshal.AsBytes(converted[..n]));
            values = values[n..];
        }
    }

    /// <summary>Converts float32 values to bfloat16 or float16 bits, rounding to nearest even; NaN stays NaN.</summary>
    /// <exception cref="ArgumentException"><paramref name="type"/> is not a 16-bit type or <paramref name="destination"/> is too short.</exception>
    public static void Narrow(WeightType type, ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException($"destination holds {destination.Length} elements, {source.Length} are needed", nameof(destination));
        switch (type)
        {
            case WeightType.BF16:
                for (int i = 0; i < source.Length; i++) destination[i] = ToBFloat16(source[i]);
                break;
            case WeightType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<ushort, Half>(destination));
                break;
            default:
                throw new ArgumentException($"{type} is not a 16-bit type", nameof(type));
        }
    }

    /// <summary>Rounds a float32 to bfloat16 bits, to nearest even; a NaN keeps a quiet NaN payload.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    // A zero-byte tensor is complete as soon as it becomes current.
    private void SkipEmpty()
    {
        while (_current < _tensors.Length && _written == _ends[_current]) _current++;
    }

    /// <summary>Checks every tensor's bytes were written, closes the file and renames it to <see cref="Path"/>.</summary>
    /// <exception cref="InvalidOperationException">A tensor still lacks bytes; the message names it.</exception>
    public void Complete()
    {
        if (_file.Stream is null) throw new InvalidOperationException($"'{Path}' is already {(_file.Committed ? "completed" : "disposed")}");
        if (_current < _tensors.Length)
            throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' in '{Path}' still needs {_ends[_current] - _written} bytes ({DataBytes - _written} of {DataBytes} data bytes are missing)");
        _file.Commit();
    }

    /// <summary>Closes the file; an uncompleted file is deleted.</summary>
    public void Dispose() => _file.Dispose();
}
