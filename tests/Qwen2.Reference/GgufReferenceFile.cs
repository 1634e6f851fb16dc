using System.Buffers.Binary;
using System.Text;
using Qwen2.Kernels;

namespace Qwen2.Reference;

/// <summary>
/// A GGUF (v2, v3) reader for the tests, written from the format description and independent of the engine's reader:
/// every metadata value type, tensor infos, and tensor data of the types the engine and ggml share, widened to float.
/// </summary>
public sealed class GgufReferenceFile
{
    private readonly byte[] _bytes;
    private readonly long _dataStart;

    private GgufReferenceFile(byte[] bytes, long dataStart, Dictionary<string, object> kv, Dictionary<string, GgufReferenceTensor> tensors)
    {
        _bytes = bytes; _dataStart = dataStart; Kv = kv; Tensors = tensors;
    }

    /// <summary>Metadata: scalars as their .NET type, strings as string, arrays as object[].</summary>
    public Dictionary<string, object> Kv { get; }

    /// <summary>Tensor infos by name.</summary>
    public Dictionary<string, GgufReferenceTensor> Tensors { get; }

    /// <summary>A string value.</summary>
    public string String(string key) => (string)Kv[key];

    /// <summary>An unsigned or signed integer value.</summary>
    public long UInt(string key) => Convert.ToInt64(Kv[key], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A float32 value.</summary>
    public double Float(string key) => (float)Kv[key];

    /// <summary>ggml's type numbers for the types the engine reads.</summary>
    public static WeightType TypeOf(uint ggmlType) => ggmlType switch
    {
        0 => WeightType.F32,
        1 => WeightType.F16,
        2 => WeightType.Q4_0,
        3 => WeightType.Q4_1,
        6 => WeightType.Q5_0,
        7 => WeightType.Q5_1,
        8 => WeightType.Q8_0,
        12 => WeightType.Q4_K,
        13 => WeightType.Q5_K,
        14 => WeightType.Q6_K,
        30 => WeightType.BF16,
        _ => throw new InvalidDataException($"ggml tensor type {ggmlType} is not one the engine reads"),
    };

    /// <summary>The tensor's values, row-major (rows of Dims[0] elements), dequantized.</summary>
    public float[] Floats(string name)
    {
        var t = Tensors[name];
        var values = new float[checked((int)t.Elements)];
        WeightTypes.ToSingle(t.Type, _bytes.AsSpan(checked((int)(_dataStart + t.Offset)), checked((int)t.Bytes)), values);
        return values;
    }

    /// <summary>Reads the whole file.</summary>
    public static GgufReferenceFile Read(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        int pos = 0;
        uint U32() { uint v = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(pos)); pos += 4; return v; }
        ulong U64() { ulong v = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(pos)); pos += 8; return v; }
        string Str() { int n = checked((int)U64()); string s = Encoding.UTF8.GetString(b, pos, n); pos += n; return s; }
        object Value(uint type)
        {
            switch (type)
            {
                case 0: return b[pos++];
                case 1: return (sbyte)b[pos++];
                case 2: { ushort v = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pos)); pos += 2; return v; }
                case 3: { short v = BinaryPrimitives.ReadInt16LittleEndian(b.AsSpan(pos)); pos += 2; return v; }
                case 4: return U32();
                case 5: return (int)U32();
                case 6: return BitConverter.UInt32BitsToSingle(U32());
                case 7: return b[pos++] != 0;
                case 8: return Str();
                case 9:
                {
                    uint et = U32();
                    long n = checked((long)U64());
                    var items = new object[n];
                    for (long i = 0; i < n; i++) items[i] = Value(et);
                    return items;
                }
                case 10: return U64();
                case 11: return (long)U64();
                case 12: return BitConverter.UInt64BitsToDouble(U64());
                default: throw new InvalidDataException($"{path}: metadata value type {type} at byte {pos}");
            }
        }

        if (b.Length < 24 || Encoding.ASCII.GetString(b, 0, 4) != "GGUF") throw new InvalidDataException($"{path}: not a GGUF file");
        pos = 4;
        uint version = U32();
        if (version is not (2 or 3)) throw new InvalidDataException($"{path}: GGUF version {version}");
        ulong tensorCount = U64(), kvCount = U64();
        var kv = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = Str();
            kv.Add(key, Value(U32()));
        }
        var tensors = new Dictionary<string, GgufReferenceTensor>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = Str();
            uint dims = U32();
            var d = new long[dims];
            for (int j = 0; j < dims; j++) d[j] = checked((long)U64());
            var type = TypeOf(U32());
            long offset = checked((long)U64());
            tensors.Add(name, new GgufReferenceTensor(name, d, type, offset));
        }
        long alignment = kv.TryGetValue("general.alignment", out var a) ? Convert.ToInt64(a, System.Globalization.CultureInfo.InvariantCulture) : 32;
        long dataStart = (pos + alignment - 1) / alignment * alignment;
        foreach (var t in tensors.Values)
            if (dataStart + t.Offset + t.Bytes > b.Length) throw new InvalidDataException($"{path}: tensor {t.Name} runs past the end of the file");
        return new GgufReferenceFile(b, dataStart, kv, tensors);
    }
}
