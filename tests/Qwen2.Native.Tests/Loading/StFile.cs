using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using static Qwen2.Native.Tests.CheckpointEdits;

namespace Qwen2.Native.Tests;

/// <summary>
/// A small safetensors reader and writer: <see cref="Read"/> splits a file into its tensors (in data order);
/// <see cref="Write"/> lays their data out back to back and writes a header (built as text, so it may hold
/// duplicate names, bad dtypes, shapes or offsets).
/// </summary>
internal sealed class StFile
{
    public List<StTensor> Tensors { get; } = new();
    public string? Metadata { get; set; }
    public byte[] Trailing { get; set; } = [];

    public StTensor this[string name] => Tensors.Single(t => t.Name == name);

    public long DataLength => Tensors.Sum(t => (long)t.Data.Length);

    /// <summary>Where <paramref name="name"/>'s data starts and ends when written (before any offset override).</summary>
    public (long Begin, long End) OffsetsOf(string name)
    {
        long at = 0;
        foreach (var t in Tensors)
        {
            if (t.Name == name) return (at, at + t.Data.Length);
            at += t.Data.Length;
        }
        throw new ArgumentException(name);
    }

    public void Remove(string name) => Assert.Equal(1, Tensors.RemoveAll(t => t.Name == name));

    public static byte[] HeaderBytes(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        return bytes.AsSpan(8, n).ToArray();
    }

    public static StFile Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        var data = bytes.AsMemory(8 + n);
        var file = new StFile();
        var entries = new List<(long Begin, StTensor Tensor)>();
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, n));
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") { file.Metadata = p.Value.GetRawText(); continue; }
            long begin = p.Value.GetProperty("data_offsets")[0].GetInt64(), end = p.Value.GetProperty("data_offsets")[1].GetInt64();
            var shape = "[" + string.Join(", ", p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())) + "]";
            entries.Add((begin, new StTensor(p.Name, p.Value.GetProperty("dtype").GetString()!, shape, data.Slice((int)begin, (int)(end - begin)).ToArray())));
        }
        file.Tensors.AddRange(entries.OrderBy(e => e.Begin).Select(e => e.Tensor));
        Assert.Equal(data.Length, file.DataLength);
        return file;
    }

    public void Write(string path)
    {
        var sb = new StringBuilder("{");
        if (Metadata is not null) sb.Append("\"__metadata__\": ").Append(Metadata);
        long at = 0;
        foreach (var t in Tensors)
        {
            long[] offsets = t.Offsets ?? [at, at + t.Data.Length];
            at += t.Data.Length;
            if (sb.Length > 1) sb.Append(", ");
            sb.Append(JsonSerializer.Serialize(t.Name)).Append(": {\"dtype\": ").Append(JsonSerializer.Serialize(t.DType))
              .Append(", \"shape\": ").Append(t.Shape)
              .Append(", \"data_offsets\": [").Append(offsets[0].ToString(CultureInfo.InvariantCulture)).Append(", ")
              .Append(offsets[1].ToString(CultureInfo.InvariantCulture)).Append("]}");
        }
        sb.Append('}');
        // pad the header with spaces to a multiple of 8, as the reference writer does
        while ((Encoding.UTF8.GetByteCount(sb.ToString()) & 7) != 0) sb.Append(' ');
        var data = new byte[at + Trailing.Length];
        long pos = 0;
        foreach (var t in Tensors) { t.Data.CopyTo(data, pos); pos += t.Data.Length; }
        Trailing.CopyTo(data, pos);
        WriteRawBytes(path, Encoding.UTF8.GetBytes(sb.ToString()), data);
    }
}
