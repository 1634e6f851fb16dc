using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Qwen2.Native.Tests;

/// <summary>Copies a fixture checkpoint and edits its files: the config, the shard index, raw safetensors bytes.</summary>
internal static class CheckpointEdits
{
    private const string Single = CheckpointFiles.SingleFile;
    private const string Index = CheckpointFiles.IndexFile;

    internal static TempDir CopyModel(string name)
    {
        var dir = Fixtures.TempDir();
        CopyDirectory(Fixtures.Model(name), dir.Path);
        return dir;
    }

    internal static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    internal static void EditConfig(TempDir dir, Action<JsonObject> edit)
    {
        string path = dir.File("config.json");
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(o);
        File.WriteAllText(path, o.ToJsonString());
    }

    internal static Dictionary<string, string> IndexMap(TempDir dir)
    {
        var o = JsonNode.Parse(File.ReadAllText(dir.File(Index)))!;
        return o["weight_map"]!.AsObject().ToDictionary(p => p.Key, p => (string)p.Value!);
    }

    internal static string ShardOf(TempDir dir, string tensor) => IndexMap(dir)[tensor];

    internal static void EditIndex(TempDir dir, Action<JsonObject> editMap) => EditIndexAt(dir.File(Index), editMap);

    internal static void EditIndexAt(string path, Action<JsonObject> editMap)
    {
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        editMap(o["weight_map"]!.AsObject());
        File.WriteAllText(path, o.ToJsonString());
    }

    internal static int DTypeSize(string dtype) => dtype switch
    {
        "BOOL" or "U8" or "I8" or "F8_E4M3" or "F8_E5M2" => 1,
        "I16" or "U16" or "F16" or "BF16" => 2,
        "I32" or "U32" or "F32" => 4,
        "I64" or "U64" or "F64" => 8,
        _ => throw new ArgumentException(dtype),
    };

    internal static void WriteRaw(string path, string header, byte[] data) => WriteRawBytes(path, Encoding.UTF8.GetBytes(header), data);

    /// <summary>Writes a safetensors file: 8-byte little-endian header length, the header bytes, the data.</summary>
    internal static void WriteRawBytes(string path, byte[] header, ReadOnlySpan<byte> data)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.Write(data);
    }
}
