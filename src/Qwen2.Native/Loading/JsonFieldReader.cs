using System.Text.Json;

namespace Qwen2.Native;

/// <summary>Typed field access with errors that name the field; JSON null counts as absent.</summary>
internal readonly struct JsonFieldReader(JsonElement obj, string source, string prefix = "")
{
    private bool TryGet(string name, out JsonElement e) => obj.TryGetProperty(name, out e) && e.ValueKind != JsonValueKind.Null;

    private CheckpointException Bad(string name, JsonElement e, string expected) =>
        new(source, $"is {e.GetRawText()}; expected {expected}", field: prefix + name);

    public int? Int(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v)) return v;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
        throw Bad(name, e, "an integer");
    }

    public double? Double(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double v)) return v;
        throw Bad(name, e, "a number");
    }

    public bool? Bool(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Bad(name, e, "true or false") };
    }

    public string? String(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.String ? Text(name, e) : throw Bad(name, e, "a string");
    }

    // System.Text.Json throws InvalidOperationException for an escape that is not valid UTF-16 ("\ud800").
    private string Text(string name, JsonElement e)
    {
        try { return e.GetString()!; }
        catch (InvalidOperationException x) { throw new CheckpointException(source, $"is {e.GetRawText()}, not a valid string: {x.Message}", field: prefix + name, inner: x); }
    }

    public IReadOnlyList<string>? StringList(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Array) throw Bad(name, e, "an array of strings");
        var list = new List<string>();
        foreach (var item in e.EnumerateArray())
            list.Add(item.ValueKind == JsonValueKind.String ? Text(name, item) : throw Bad(name, e, "an array of strings"));
        return list;
    }

    public IReadOnlyList<int> IntOrIntList(string name)
    {
        if (!TryGet(name, out var e)) return Array.Empty<int>();
        if (e.ValueKind == JsonValueKind.Number) return new[] { Int(name)!.Value };
        if (e.ValueKind != JsonValueKind.Array) throw Bad(name, e, "an integer or an array of integers");
        var list = new List<int>();
        foreach (var item in e.EnumerateArray())
            list.Add(item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int v) ? v : throw Bad(name, e, "an integer or an array of integers"));
        return list;
    }
}
