using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Qwen2.Native;

/// <summary>Reads one metadata value of a given tag; arrays are checked against the bytes left before anything is allocated.</summary>
internal static class GgufValueReader
{
    /// <summary>Bytes of a scalar of <paramref name="t"/>; a string's minimum (its 8-byte length); 0 for Array.</summary>
    private static int MinSize(GgufMetadataType t) => t switch
    {
        GgufMetadataType.UInt8 or GgufMetadataType.Int8 or GgufMetadataType.Bool => 1,
        GgufMetadataType.UInt16 or GgufMetadataType.Int16 => 2,
        GgufMetadataType.UInt32 or GgufMetadataType.Int32 or GgufMetadataType.Float32 => 4,
        GgufMetadataType.UInt64 or GgufMetadataType.Int64 or GgufMetadataType.Float64 or GgufMetadataType.String => 8,
        _ => 0,
    };

    public static GgufMetadataType Tag(ref GgufCursor c, string path, string key, string what)
    {
        uint raw = c.UInt32(what, key);
        if (raw > (uint)GgufMetadataType.Float64)
            throw new CheckpointException(path, $"{what} {raw} is not a GGUF value type (0 to 12)", field: key);
        return (GgufMetadataType)raw;
    }

    public static GgufValue Read(ref GgufCursor c, string path, string key, GgufMetadataType type)
    {
        if (type != GgufMetadataType.Array) return new GgufValue(type, type, Scalar(ref c, path, key, type));
        var element = Tag(ref c, path, key, "array element type");
        if (element == GgufMetadataType.Array)
            throw new CheckpointException(path, "is an array of arrays, which GGUF readers do not support", field: key);
        ulong count = c.UInt64("array length", key);
        long min = MinSize(element);
        // The count is compared with what the bytes left could hold before it sizes an array.
        if (count > (ulong)Array.MaxLength || (long)count > c.Remaining / min)
            throw new CheckpointException(path, $"array of {count} {GgufValue.Name(element)} values cannot fit in the {c.Remaining} bytes left", field: key);
        int n = (int)count;
        object array = element switch
        {
            GgufMetadataType.String => Strings(ref c, key, n),
            GgufMetadataType.Bool => Bools(ref c, path, key, n),
            GgufMetadataType.UInt8 => Numbers<byte>(ref c, key, n),
            GgufMetadataType.Int8 => Numbers<sbyte>(ref c, key, n),
            GgufMetadataType.UInt16 => Numbers<ushort>(ref c, key, n),
            GgufMetadataType.Int16 => Numbers<short>(ref c, key, n),
            GgufMetadataType.UInt32 => Numbers<uint>(ref c, key, n),
            GgufMetadataType.Int32 => Numbers<int>(ref c, key, n),
            GgufMetadataType.Float32 => Numbers<float>(ref c, key, n),
            GgufMetadataType.UInt64 => Numbers<ulong>(ref c, key, n),
            GgufMetadataType.Int64 => Numbers<long>(ref c, key, n),
            _ => Numbers<double>(ref c, key, n),
        };
        return new GgufValue(type, element, array);
    }

    private static string[] Strings(ref GgufCursor c, string key, int n)
    {
        // Grown as read: a count that passed the bytes-left check may still be false, and fail a few strings in.
        var a = new List<string>(Math.Min(n, 1 << 16));
        for (int i = 0; i < n; i++) a.Add(c.String($"element {i}", long.MaxValue, key));
        return [.. a];
    }

    private static bool[] Bools(ref GgufCursor c, string path, string key, int n)
    {
        var bytes = c.Bytes(n, "bool array", key);
        var a = new bool[n];
        for (int i = 0; i < n; i++) a[i] = Bool(bytes[i], path, key);
        return a;
    }

    private static T[] Numbers<T>(ref GgufCursor c, string key, int n) where T : unmanaged
    {
        // Little-endian on every platform .NET runs this engine on; the file is little-endian by the version check.
        var bytes = c.Bytes(checked(n * System.Runtime.CompilerServices.Unsafe.SizeOf<T>()), "array", key);
        return MemoryMarshal.Cast<byte, T>(bytes).ToArray();
    }

    private static bool Bool(byte b, string path, string key) => b switch
    {
        0 => false,
        1 => true,
        _ => throw new CheckpointException(path, $"bool value {b} is neither 0 nor 1", field: key),
    };

    private static object Scalar(ref GgufCursor c, string path, string key, GgufMetadataType type) => type switch
    {
        GgufMetadataType.UInt8 => c.Bytes(1, "value", key)[0],
        GgufMetadataType.Int8 => (sbyte)c.Bytes(1, "value", key)[0],
        GgufMetadataType.Bool => Bool(c.Bytes(1, "value", key)[0], path, key),
        GgufMetadataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(c.Bytes(2, "value", key)),
        GgufMetadataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(c.Bytes(2, "value", key)),
        GgufMetadataType.UInt32 => c.UInt32("value", key),
        GgufMetadataType.Int32 => (int)c.UInt32("value", key),
        GgufMetadataType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(c.Bytes(4, "value", key)),
        GgufMetadataType.UInt64 => c.UInt64("value", key),
        GgufMetadataType.Int64 => c.Int64("value", key),
        GgufMetadataType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(c.Bytes(8, "value", key)),
        _ => c.String("string value", long.MaxValue, key),
    };
}
