using System.Buffers.Binary;
using System.Text;

namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>One tensor of a <see cref="RawGguf"/>: dims innermost first; a null offset is placed where the reader expects it.</summary>
public sealed class RawTensor
{
    public required string Name;
    public required long[] Dims;
    public uint Type;
    public long? Offset;
    public uint? NDimsOverride;
    public byte[]? NameBytes;
    public float[]? Values; // F32 contents; zeros when null
}

/// <summary>
/// Writes GGUF bytes field by field, so a test can make exactly one field wrong (the production writer refuses to).
/// </summary>
public sealed class RawGguf
{
    public uint Magic = 0x46554747;
    public uint Version = 3;
    public ulong? TensorCountOverride, KvCountOverride;
    public int Alignment = 32;
    public long TruncateDataBy;
    public bool HeaderOnly; // stop after the padded header (a test writes the data itself)
    public readonly List<(byte[] Key, byte[] Value)> Kv = new();
    public readonly List<RawTensor> Tensors = new();

    private static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    private static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
    public static byte[] Str(string s) => Str(Encoding.UTF8.GetBytes(s));
    public static byte[] Str(byte[] s) => [.. U64((ulong)s.Length), .. s];

    public RawGguf Raw(string key, uint type, byte[] payload) { Kv.Add((Encoding.UTF8.GetBytes(key), [.. U32(type), .. payload])); return this; }
    public RawGguf String(string key, string value) => Raw(key, 8, Str(value));
    public RawGguf UInt32(string key, uint value) => Raw(key, 4, U32(value));
    public RawGguf Int32(string key, int value) => Raw(key, 5, U32((uint)value));
    public RawGguf Float32(string key, float value) { var b = new byte[4]; BinaryPrimitives.WriteSingleLittleEndian(b, value); return Raw(key, 6, b); }
    public RawGguf Bool(string key, bool value) => Raw(key, 7, [value ? (byte)1 : (byte)0]);
    public RawGguf Strings(string key, IEnumerable<string> values)
    {
        var list = values.ToList();
        return Raw(key, 9, [.. U32(8), .. U64((ulong)list.Count), .. list.SelectMany(Str)]);
    }
    public RawGguf Ints(string key, IEnumerable<int> values)
    {
        var list = values.ToList();
        return Raw(key, 9, [.. U32(5), .. U64((ulong)list.Count), .. list.SelectMany(v => U32((uint)v))]);
    }

    public RawGguf Tensor(string name, long[] dims, GgmlType type = GgmlType.F32, float[]? values = null)
    {
        Tensors.Add(new RawTensor { Name = name, Dims = dims, Type = (uint)type, Values = values });
        return this;
    }

    public static long Bytes(RawTensor t)
    {
        var type = (GgmlType)t.Type;
        if (!GgmlTypeLayout.IsKnown(type)) return 0;
        long n = t.Dims.Aggregate(1L, (a, d) => a * d);
        return n / GgmlTypeLayout.BlockSize(type) * GgmlTypeLayout.BlockBytes(type);
    }

    private long Pad(long x) => (x + Alignment - 1) / Alignment * Alignment;

    public byte[] Build()
    {
        var ms = new MemoryStream();
        ms.Write(U32(Magic)); ms.Write(U32(Version));
        ms.Write(U64(TensorCountOverride ?? (ulong)Tensors.Count));
        ms.Write(U64(KvCountOverride ?? (ulong)Kv.Count));
        foreach (var (k, v) in Kv) { ms.Write(Str(k)); ms.Write(v); }
        long at = 0;
        var offsets = new List<long>();
        foreach (var t in Tensors)
        {
            ms.Write(Str(t.NameBytes ?? Encoding.UTF8.GetBytes(t.Name)));
            ms.Write(U32(t.NDimsOverride ?? (uint)t.Dims.Length));
            foreach (var d in t.Dims) ms.Write(U64((ulong)d));
            ms.Write(U32(t.Type));
            long offset = t.Offset ?? at;
            offsets.Add(offset);
            ms.Write(U64((ulong)offset));
            at = Pad(offset + Math.Max(0, Bytes(t)));
        }
        while (ms.Length % Alignment != 0) ms.WriteByte(0);
        long dataStart = ms.Length;
        if (HeaderOnly) return ms.ToArray();
        for (int i = 0; i < Tensors.Count; i++)
        {
            var t = Tensors[i];
            long bytes = Bytes(t);
            if (bytes <= 0 || bytes > 1 << 26 || offsets[i] > 1 << 26) continue;
            ms.Position = dataStart + offsets[i];
            if (t.Values is { } values)
                foreach (var v in values) { var b = new byte[4]; BinaryPrimitives.WriteSingleLittleEndian(b, v); ms.Write(b); }
            else ms.Write(new byte[bytes]);
        }
        ms.SetLength(Math.Max(dataStart, Math.Max(ms.Length, dataStart + at) - TruncateDataBy));
        return ms.ToArray();
    }
}
