using System.Buffers.Binary;
using System.Text;
using Qwen2.Kernels;

namespace Qwen2.Native.Gguf;

/// <summary>
/// Writes a GGUF version 3 file without holding tensor data in memory: metadata and tensor infos are declared first,
/// <see cref="Begin"/> writes the header, then each tensor's bytes are appended in declaration order with
/// <see cref="Write"/> (any number of chunks), padded to the alignment between tensors, and <see cref="Complete"/>
/// finishes the file. As <see cref="SafeTensorsWriter"/>, it is built under a <c>.partial</c> name and renamed into
/// place on completion; disposing an unfinished writer deletes it. All numbers are little-endian. Not thread-safe.
/// </summary>
public sealed class GgufWriter : IDisposable
{
    /// <summary>The file magic, "GGUF".</summary>
    public static ReadOnlySpan<byte> Magic => "GGUF"u8;

    /// <summary>The format version written.</summary>
    public const uint Version = 3;

    /// <summary>The alignment GGUF readers assume when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    private readonly MemoryStream _kv = new();
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<(string Name, long[] Dims, GgmlType Type, long Bytes, long Offset)> _tensors = new();
    private PartialFile? _file;
    private long _dataBytes; // size of the data section as declared so far, padding included
    private int _current = -1;
    private long _currentWritten;

    /// <summary>Creates a writer for <paramref name="path"/>; nothing is written until <see cref="Begin"/>.</summary>
    /// <param name="path">The file to write; an existing file is replaced only when <see cref="Complete"/> succeeds.</param>
    /// <param name="alignment">Alignment of the data section and of every tensor in it; <see cref="Begin"/> records it as <c>general.alignment</c> when not 32 and not added already.</param>
    /// <exception cref="ArgumentException"><paramref name="alignment"/> is not a positive multiple of 8.</exception>
    public GgufWriter(string path, int alignment = DefaultAlignment)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        // ggml requires a power of two; a multiple of 8 keeps every tensor's elements naturally aligned.
        if (alignment <= 0 || alignment % 8 != 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentException($"alignment {alignment} must be a power of two of at least 8", nameof(alignment));
        Path = path;
        Alignment = alignment;
    }

    /// <summary>Path the finished file will have.</summary>
    public string Path { get; }

    /// <summary>Alignment of the data section and of each tensor's offset within it.</summary>
    public int Alignment { get; }

    /// <summary>Metadata entries declared.</summary>
    public int KeyValueCount => _keys.Count;

    /// <summary>Whether metadata key <paramref name="key"/> is added.</summary>
    public bool HasKey(string key) => _keys.Contains(key);

    /// <summary>Tensors declared.</summary>
    public int TensorCount => _tensors.Count;

    /// <summary>Name of the tensor whose bytes <see cref="Write"/> appends next, or null before <see cref="Begin"/> and after the last.</summary>
    public string? Current => _current >= 0 && _current < _tensors.Count ? _tensors[_current].Name : null;

    /// <summary>Adds a string value.</summary>
    public void AddString(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Key(key, GgufMetadataType.String);
        WriteString(_kv, value);
    }

    /// <summary>Adds an unsigned 32-bit value.</summary>
    public void AddUInt32(string key, uint value)
    {
        Key(key, GgufMetadataType.UInt32);
        WriteUInt32(_kv, value);
    }

    /// <summary>Adds a signed 32-bit value.</summary>
    public void AddInt32(string key, int value)
    {
        Key(key, GgufMetadataType.Int32);
        WriteUInt32(_kv, (uint)value);
    }

    /// <summary>Adds a float32 value.</summary>
    public void AddFloat32(string key, float value)
    {
        Key(key, GgufMetadataType.Float32);
        WriteUInt32(_kv, BitConverter.SingleToUInt32Bits(value));
    }

    /// <summary>Adds a boolean value.</summary>
    public void AddBool(string key, bool value)
    {
        Key(key, GgufMetadataType.Bool);
        _kv.WriteByte(value ? (byte)1 : (byte)0);
    }

    /// <summary>Adds an array of strings.</summary>
    public void AddStringArray(string key, IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        Key(key, GgufMetadataType.Array);
        WriteUInt32(_kv, (uint)GgufMetadataType.String);
        WriteUInt64(_kv, (ulong)values.Count);
        for (int i = 0; i < values.Count; i++)
            WriteString(_kv, values[i] ?? throw new ArgumentException($"'{key}': item {i} is null", nameof(values)));
    }

    /// <summary>Adds an array of signed 32-bit integers.</summary>
    public void AddInt32Array(string key, IReadOnlyList<int> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        Key(key, GgufMetadataType.Array);
        WriteUInt32(_kv, (uint)GgufMetadataType.Int32);
        WriteUInt64(_kv, (ulong)values.Count);
        foreach (int v in values) WriteUInt32(_kv, (uint)v);
    }

    /// <summary>Adds a value read from another GGUF file (<see cref="GgufFile.Metadata"/>) with its own type tag, so a copied key keeps its encoding.</summary>
    /// <exception cref="ArgumentException">The value's CLR type does not match its tag.</exception>
    public void AddValue(string key, GgufValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Key(key, value.Type);
        if (!value.IsArray)
        {
            WriteScalar(key, value.Type, value.Value);
            return;
        }
        var items = value.Value as Array ?? throw new ArgumentException($"'{key}': an array value holds {value.Value.GetType().Name}", nameof(value));
        WriteUInt32(_kv, (uint)value.ElementType);
        WriteUInt64(_kv, (ulong)items.Length);
        foreach (object item in items) WriteScalar(key, value.ElementType, item);
    }

    private void WriteScalar(string key, GgufMetadataType type, object value)
    {
        Span<byte> b = stackalloc byte[8];
        int n;
        switch ((type, value))
        {
            case (GgufMetadataType.UInt8, byte v): b[0] = v; n = 1; break;
            case (GgufMetadataType.Int8, sbyte v): b[0] = (byte)v; n = 1; break;
            case (GgufMetadataType.Bool, bool v): b[0] = v ? (byte)1 : (byte)0; n = 1; break;
            case (GgufMetadataType.UInt16, ushort v): BinaryPrimitives.WriteUInt16LittleEndian(b, v); n = 2; break;
            case (GgufMetadataType.Int16, short v): BinaryPrimitives.WriteInt16LittleEndian(b, v); n = 2; break;
            case (GgufMetadataType.UInt32, uint v): BinaryPrimitives.WriteUInt32LittleEndian(b, v); n = 4; break;
            case (GgufMetadataType.Int32, int v): BinaryPrimitives.WriteInt32LittleEndian(b, v); n = 4; break;
            case (GgufMetadataType.Float32, float v): BinaryPrimitives.WriteSingleLittleEndian(b, v); n = 4; break;
            case (GgufMetadataType.UInt64, ulong v): BinaryPrimitives.WriteUInt64LittleEndian(b, v); n = 8; break;
            case (GgufMetadataType.Int64, long v): BinaryPrimitives.WriteInt64LittleEndian(b, v); n = 8; break;
            case (GgufMetadataType.Float64, double v): BinaryPrimitives.WriteDoubleLittleEndian(b, v); n = 8; break;
            case (GgufMetadataType.String, string v): WriteString(_kv, v); return;
            default: throw new ArgumentException($"'{key}': a {type} value holds {value.GetType().Name}", nameof(value));
        }
        _kv.Write(b[..n]);
    }

    /// <summary>Declares a tensor; its data follows the previously declared ones.</summary>
    /// <param name="name">Unique name, at most 64 bytes of UTF-8 (ggml's limit, terminator included).</param>
    /// <param name="shape">Dimensions outermost first, as PyTorch lists them; GGUF stores them innermost first.</param>
    /// <param name="type">Element type of the stored data.</param>
    /// <exception cref="ArgumentException">The name is empty, too long or repeated, or the shape is empty, negative or has more than 4 dimensions.</exception>
    /// <exception cref="InvalidOperationException"><see cref="Begin"/> was already called.</exception>
    public void AddTensor(string name, IReadOnlyList<long> shape, GgmlType type)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (_current >= 0) throw new InvalidOperationException($"'{Path}': tensor '{name}' was declared after the header was written");
        if (Encoding.UTF8.GetByteCount(name) >= 64) throw new ArgumentException($"tensor name '{name}' is longer than GGUF's 63 bytes", nameof(name));
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"tensor '{name}' is declared twice", nameof(name));
        if (shape.Count is 0 or > 4) throw new ArgumentException($"tensor '{name}' has {shape.Count} dimensions; GGUF takes 1 to 4", nameof(shape));
        long elements = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}' has a negative dimension in [{string.Join(", ", shape)}]", nameof(shape));
            elements = checked(elements * d);
        }
        long bytes;
        var weightType = GgmlTypeLayout.ToWeightType(type);
        if (WeightTypes.IsQuantized(weightType))
        {
            // Blocks run along the innermost dimension: each row must be whole blocks.
            int block = WeightTypes.BlockSize(weightType);
            if (shape[^1] % block != 0)
                throw new ArgumentException($"tensor '{name}': rows of {shape[^1]} are not whole {type} blocks of {block}", nameof(shape));
            bytes = WeightTypes.ByteCount(weightType, elements);
        }
        else bytes = checked(elements * ElementSize(type));
        var dims = shape.Reverse().ToArray();
        _tensors.Add((name, dims, type, bytes, _dataBytes));
        _dataBytes = checked(_dataBytes + Align(bytes, Alignment));
    }

    /// <summary>Bytes per element of <paramref name="type"/>, for the float types (block types: <see cref="WeightTypes.ByteCount"/>).</summary>
    public static int ElementSize(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unsupported tensor type"),
    };

    /// <summary>Size the finished file will have, from what is declared so far.</summary>
    public long FileSize => Align(HeaderLength(), Alignment) + _dataBytes;

    /// <summary>Creates the file and writes the header, metadata and tensor infos, padded to the alignment.</summary>
    /// <exception cref="InvalidOperationException">The header was already written.</exception>
    public void Begin()
    {
        if (_file is not null) throw new InvalidOperationException($"'{Path}': the header is already written");
        // Readers assume 32 without the key; any other alignment must be declared.
        if (Alignment != DefaultAlignment && !HasKey("general.alignment")) AddUInt32("general.alignment", (uint)Alignment);
        var header = new MemoryStream();
        header.Write(Magic);
        WriteUInt32(header, Version);
        WriteUInt64(header, (ulong)_tensors.Count);
        WriteUInt64(header, (ulong)_keys.Count);
        _kv.Position = 0;
        _kv.CopyTo(header);
        foreach (var t in _tensors)
        {
            WriteString(header, t.Name);
            WriteUInt32(header, (uint)t.Dims.Length);
            foreach (long d in t.Dims) WriteUInt64(header, (ulong)d);
            WriteUInt32(header, (uint)t.Type);
            WriteUInt64(header, (ulong)t.Offset);
        }
        long padded = Align(header.Length, Alignment);
        while (header.Length < padded) header.WriteByte(0);

        _file = new PartialFile(Path, padded + _dataBytes);
        try
        {
            header.Position = 0;
            header.CopyTo(_file.Stream!);
            _current = 0;
            _currentWritten = 0;
            SkipEmpty();
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Appends bytes to the current tensor; a chunk may not run past its end. The padding after a tensor is written when it is full.</summary>
    /// <exception cref="InvalidOperationException">The header is not written, all tensors are full, or the chunk runs past the current tensor.</exception>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        var stream = _file?.Stream ?? throw new InvalidOperationException($"'{Path}': {(_file is { Committed: true } ? "already completed" : "call Begin before writing tensor data")}");
        if (bytes.IsEmpty) return;
        if (_current >= _tensors.Count) throw new InvalidOperationException($"'{Path}': all {_tensors.Count} tensors are written; {bytes.Length} more bytes were given");
        var t = _tensors[_current];
        if (bytes.Length > t.Bytes - _currentWritten)
            throw new InvalidOperationException($"tensor '{t.Name}' in '{Path}' needs {t.Bytes - _currentWritten} more bytes; a chunk of {bytes.Length} was given");
        stream.Write(bytes);
        _currentWritten += bytes.Length;
        SkipEmpty();
    }

    private void SkipEmpty()
    {
        while (_current < _tensors.Count && _currentWritten == _tensors[_current].Bytes)
        {
            long pad = Align(_tensors[_current].Bytes, Alignment) - _tensors[_current].Bytes;
            for (; pad > 0; pad--) _file!.Stream!.WriteByte(0); // under one alignment unit
            _current++;
            _currentWritten = 0;
        }
    }

    /// <summary>Checks every tensor is written, closes the file and renames it to <see cref="Path"/>.</summary>
    /// <exception cref="InvalidOperationException">The header is not written or a tensor still lacks bytes; the message names it.</exception>
    public void Complete()
    {
        if (_file?.Stream is null) throw new InvalidOperationException($"'{Path}': {(_file is { Committed: true } ? "already completed" : "the header is not written")}");
        if (_current < _tensors.Count)
            throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' in '{Path}' still needs {_tensors[_current].Bytes - _currentWritten} bytes");
        _file.Commit();
    }

    /// <summary>Closes the file; an unfinished file is deleted.</summary>
    public void Dispose() => _file?.Dispose();

    private void Key(string key, GgufMetadataType type)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (_current >= 0) throw new InvalidOperationException($"'{Path}': key '{key}' was added after the header was written");
        if (!_keys.Add(key)) throw new ArgumentException($"key '{key}' is added twice", nameof(key));
        WriteString(_kv, key);
        WriteUInt32(_kv, (uint)type);
    }

    private long HeaderLength()
    {
        long n = 4 + 4 + 8 + 8 + _kv.Length;
        foreach (var t in _tensors) n += 8 + Encoding.UTF8.GetByteCount(t.Name) + 4 + 8L * t.Dims.Length + 4 + 8;
        return n;
    }

    private static long Align(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    private static void WriteString(Stream s, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        WriteUInt64(s, (ulong)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteUInt32(Stream s, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        s.Write(b);
    }

    private static void WriteUInt64(Stream s, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        s.Write(b);
    }
}
