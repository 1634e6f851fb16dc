namespace Qwen2.Native;

/// <summary>
/// One metadata value of a GGUF file: a scalar (<see cref="Value"/> holds the CLR type of its tag: byte, sbyte, ushort,
/// short, uint, int, float, bool, string, ulong, long or double) or an array (a CLR array of that element type).
/// </summary>
/// <param name="Type">The value's tag.</param>
/// <param name="ElementType">For an array, its elements' tag; otherwise equal to <paramref name="Type"/>.</param>
/// <param name="Value">The value.</param>
public sealed record GgufValue(GgufMetadataType Type, GgufMetadataType ElementType, object Value)
{
    /// <summary>Whether this is an array.</summary>
    public bool IsArray => Type == GgufMetadataType.Array;

    /// <summary>Number of elements of an array, 1 for a scalar.</summary>
    public int Count => Value is Array a ? a.Length : 1;

    /// <summary>A short description for error messages, e.g. "uint32" or "array of 151936 string".</summary>
    public string Describe() => IsArray ? $"array of {Count} {Name(ElementType)}" : Name(Type);

    internal static string Name(GgufMetadataType t) => t.ToString().ToLowerInvariant();
}
