namespace Qwen2.Native;

/// <summary>
/// Typed lookups over a GGUF file's metadata. An absent key is null; a present key of the wrong type or out of range
/// is a <see cref="CheckpointException"/> naming the file and the key.
/// </summary>
public sealed class GgufMetadata
{
    private readonly IReadOnlyDictionary<string, GgufValue> _values;
    private readonly string _path;

    /// <summary>Wraps <paramref name="values"/> of the file <paramref name="path"/>.</summary>
    public GgufMetadata(IReadOnlyDictionary<string, GgufValue> values, string path)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(path);
        _values = values; _path = path;
    }

    /// <summary>Whether <paramref name="key"/> is present.</summary>
    public bool Contains(string key) => _values.ContainsKey(key);

    private CheckpointException Wrong(string key, GgufValue v, string expected) =>
        new(_path, $"is {v.Describe()}, expected {expected}", field: key);

    /// <summary>A string value.</summary>
    public string? String(string key) => !_values.TryGetValue(key, out var v) ? null
        : v.Value as string ?? throw Wrong(key, v, "a string");

    /// <summary>A boolean value.</summary>
    public bool? Bool(string key) => !_values.TryGetValue(key, out var v) ? null
        : v.Value is bool b ? b : throw Wrong(key, v, "a bool");

    /// <summary>An integer value of any integer type, within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long? Integer(string key, long min = long.MinValue, long max = long.MaxValue)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.IsArray || !TryInteger(v.Value, out long x)) throw Wrong(key, v, "an integer");
        if (x < min || x > max) throw new CheckpointException(_path, $"is {x}; it must lie in [{min}, {max}]", field: key);
        return x;
    }

    /// <summary>A positive integer that fits an int.</summary>
    public int? PositiveInt(string key) => (int?)Integer(key, 1, int.MaxValue);

    /// <summary>A float32 or float64 value.</summary>
    public double? Float(string key) => !_values.TryGetValue(key, out var v) ? null
        : v.Value switch { float f => f, double d => d, _ => throw Wrong(key, v, "a float") };

    /// <summary>An array of strings.</summary>
    public string[]? StringArray(string key) => !_values.TryGetValue(key, out var v) ? null
        : v.Value as string[] ?? throw Wrong(key, v, "an array of strings");

    /// <summary>An array of integers of any integer type, each within the range of int.</summary>
    public int[]? IntArray(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.Value is not Array a || a is string[] || a is bool[] || a is float[] || a is double[]) throw Wrong(key, v, "an array of integers");
        var result = new int[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            if (!TryInteger(a.GetValue(i)!, out long x) || x < int.MinValue || x > int.MaxValue)
                throw new CheckpointException(_path, $"element {i} is {a.GetValue(i)}, outside the range of int", field: key);
            result[i] = (int)x;
        }
        return result;
    }

    private static bool TryInteger(object o, out long x)
    {
        switch (o)
        {
            case byte b: x = b; return true;
            case sbyte sb: x = sb; return true;
            case ushort us: x = us; return true;
            case short s: x = s; return true;
            case uint ui: x = ui; return true;
            case int i: x = i; return true;
            case long l: x = l; return true;
            case ulong ul when ul <= long.MaxValue: x = (long)ul; return true;
            default: x = 0; return false;
        }
    }
}
