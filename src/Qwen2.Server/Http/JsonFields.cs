using System.Text.Json;

namespace Qwen2.Server.Http;

/// <summary>
/// Typed reads of a request object's fields. A missing or null field gives null; a field of the wrong type or out
/// of range is a 400 that names it.
/// </summary>
internal readonly struct JsonFields(JsonElement root)
{
    public JsonElement Root => root;

    public JsonElement? Get(string name) =>
        root.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

    public bool Has(string name) => Get(name) is not null;

    public string? String(string name)
    {
        if (Get(name) is not { } e) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString() : throw Mistyped(name, "a string", e);
    }

    public bool? Bool(string name)
    {
        if (Get(name) is not { } e) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Mistyped(name, "a boolean", e),
        };
    }

    public double? Number(string name, double min, double max, string range)
    {
        if (Get(name) is not { } e) return null;
        if (e.ValueKind != JsonValueKind.Number) throw Mistyped(name, "a number", e);
        double v = e.GetDouble();
        if (!(v >= min && v <= max)) throw ApiException.BadRequest($"{name} must be {range}, got {e.GetRawText()}", name);
        return v;
    }

    public long? Integer(string name, long min, long max)
    {
        if (Get(name) is not { } e) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v)) throw Mistyped(name, "an integer", e);
        if (v < min || v > max) throw ApiException.BadRequest($"{name} must be between {min} and {max}, got {v}", name);
        return v;
    }

    /// <summary>A string or an array of strings (OpenAI's <c>stop</c>), as a list; null when absent.</summary>
    public IReadOnlyList<string>? StringOrStrings(string name, int maxCount)
    {
        if (Get(name) is not { } e) return null;
        if (e.ValueKind == JsonValueKind.String) return [e.GetString()!];
        if (e.ValueKind != JsonValueKind.Array) throw Mistyped(name, "a string or an array of strings", e);
        var list = new List<string>();
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw ApiException.BadRequest($"{name}[{list.Count}] must be a string, got a {RequestBody.Kind(item.ValueKind)}", name);
            list.Add(item.GetString()!);
        }
        if (list.Count > maxCount) throw ApiException.BadRequest($"{name} has {list.Count} entries; at most {maxCount} are allowed", name);
        return list;
    }

    /// <summary>An array of integers each in [0, <paramref name="bound"/>) (token ids).</summary>
    public static int[] TokenIds(JsonElement e, string name, int bound)
    {
        var ids = new int[e.GetArrayLength()];
        int i = 0;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
                throw ApiException.BadRequest($"{name}[{i}] must be an integer token id, got {item.GetRawText()}", name);
            if ((uint)id >= (uint)bound) throw ApiException.BadRequest($"{name}[{i}] = {id} is not a token id of this model (0 to {bound - 1})", name);
            ids[i++] = id;
        }
        return ids;
    }

    public static ApiException Mistyped(string name, string expected, JsonElement e) =>
        ApiException.BadRequest($"{name} must be {expected}, got a {RequestBody.Kind(e.ValueKind)}", name);
}
