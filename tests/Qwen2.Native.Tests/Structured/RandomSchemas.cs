using System.Text.Json.Nodes;

namespace Qwen2.Native.Tests.Structured;

/// <summary>
/// A seeded generator of JSON Schemas over every keyword constrained decoding supports, nested: objects (properties,
/// required, additionalProperties true/false/schema), arrays (items, minItems, maxItems), enum, const, strings with
/// lengths, numbers and integers (with minimum, maximum and the exclusive bounds, or none), boolean, null, anyOf, oneOf
/// (of distinct types, so one alternative matches), type lists, {} and true, and local $ref into $defs and definitions,
/// recursive ones included.
/// </summary>
internal sealed class RandomSchemas(int seed)
{
    private readonly Random _rng = new(seed);

    private static readonly string[] Names = ["id", "name", "tags", "a b", "naïve", "q\"uote", "x/y", "值", "count", "ok"];
    private static readonly string[] Words = ["red", "green", "a\"b", "é", "日本", "", "back\\slash", "tab\tin"];

    public JsonObject Next()
    {
        var defs = new JsonObject();
        var root = new JsonObject();
        int kind = _rng.Next(6);
        if (kind == 0)
        {
            // A recursive list: { value, next: node | null }.
            defs["node"] = Obj(("type", "object"),
                ("properties", new JsonObject { ["value"] = Scalar(2), ["next"] = new JsonObject { ["anyOf"] = new JsonArray(new JsonObject { ["$ref"] = "#/$defs/node" }, new JsonObject { ["type"] = "null" }) } }),
                ("required", new JsonArray("value")));
            root["$ref"] = "#/$defs/node";
        }
        else if (kind == 1)
        {
            // A recursive tree through an array, in the older definitions keyword.
            root["definitions"] = new JsonObject
            {
                ["tree"] = Obj(("type", "object"), ("properties", new JsonObject { ["label"] = Scalar(2), ["kids"] = new JsonObject { ["type"] = "array", ["maxItems"] = 2, ["items"] = new JsonObject { ["$ref"] = "#/definitions/tree" } } }), ("required", new JsonArray("label"))),
            };
            root["type"] = "object";
            root["properties"] = new JsonObject { ["root"] = new JsonObject { ["$ref"] = "#/definitions/tree" }, ["extra"] = Value(2) };
            root["required"] = new JsonArray("root");
        }
        else
        {
            defs["item"] = Value(2);
            var body = (_rng.Next(4) == 0 ? Value(0) : ObjectSchema(0)) as JsonObject ?? []; // true: the empty schema
            foreach (var member in body.ToList<KeyValuePair<string, JsonNode?>>()) { body.Remove(member.Key); root[member.Key] = member.Value; }
            if (_rng.Next(2) == 0 && root["properties"] is JsonObject props) props["shared"] = new JsonObject { ["$ref"] = "#/$defs/item" };
        }
        if (defs.Count > 0) root["$defs"] = defs;
        return root;
    }

    private JsonNode Value(int depth)
    {
        int pick = _rng.Next(depth >= 3 ? 8 : 13);
        return pick switch
        {
            < 5 => Scalar(depth),
            5 => Enum(),
            6 => new JsonObject { ["const"] = Literal() },
            7 => _rng.Next(2) == 0 ? new JsonObject() : JsonValue.Create(true),
            8 or 9 => ObjectSchema(depth),
            10 => ArraySchema(depth),
            11 => new JsonObject { ["anyOf"] = new JsonArray(Value(depth + 1), Value(depth + 1), Scalar(depth)) },
            _ => OneOf(depth),
        };
    }

    private JsonObject Scalar(int depth)
    {
        switch (_rng.Next(7))
        {
            case 0:
            {
                var s = new JsonObject { ["type"] = "string" };
                int min = _rng.Next(4);
                if (_rng.Next(2) == 0) s["minLength"] = min;
                if (_rng.Next(2) == 0) s["maxLength"] = min + _rng.Next(5);
                return s;
            }
            case 1: return Bounds(new JsonObject { ["type"] = "number" }, integer: false);
            case 2: return Bounds(new JsonObject { ["type"] = "integer", ["description"] = "a count" }, integer: true);
            case 3: return new JsonObject { ["type"] = "boolean" };
            case 4: return new JsonObject { ["type"] = "null" };
            case 5: return new JsonObject { ["type"] = new JsonArray("string", "null"), ["maxLength"] = 3 };
            default: return new JsonObject { ["type"] = new JsonArray("integer", "boolean") };
        }
    }

    // Bounds on most numbers and integers: one-sided, both, exclusive, a single value, negative or across zero, and for
    // integers sometimes bounds that are not integers (1.5 means at least 2). Every range holds a value of the type.
    private JsonObject Bounds(JsonObject s, bool integer)
    {
        int shape = _rng.Next(6);
        if (shape == 0) return s;
        double lo = integer && _rng.Next(3) > 0 ? _rng.Next(-30, 30) : Math.Round(_rng.NextDouble() * 60 - 30, 1 + _rng.Next(2));
        bool single = shape == 5 && (!integer || lo == Math.Floor(lo));
        // An open interval at least 2 wide holds an integer whatever its ends.
        double hi = single ? lo : Math.Round(lo + 2 + _rng.NextDouble() * 40, _rng.Next(3));
        switch (shape)
        {
            case 1: s["minimum"] = lo; break;
            case 2: s["maximum"] = hi; break;
            case 3: s["minimum"] = lo; s["maximum"] = hi; break;
            case 4: s["exclusiveMinimum"] = lo; s["exclusiveMaximum"] = hi; break;
            default:
                if (single) { s["minimum"] = lo; s["maximum"] = hi; }
                else { s["exclusiveMinimum"] = lo; s["maximum"] = hi; }
                break;
        }
        return s;
    }

    private JsonObject Enum()
    {
        var values = new JsonArray();
        int n = 1 + _rng.Next(4);
        for (int i = 0; i < n; i++) values.Add(Literal());
        if (_rng.Next(3) > 0) return new JsonObject { ["enum"] = values };
        values.Add(Words[_rng.Next(Words.Length)]); // at least one string for the typed form
        return new JsonObject { ["type"] = "string", ["enum"] = values };
    }

    private JsonNode? Literal() => _rng.Next(7) switch
    {
        0 or 1 => Words[_rng.Next(Words.Length)],
        2 => _rng.Next(-50, 50),
        3 => Math.Round(_rng.NextDouble() * 10, 2),
        4 => _rng.Next(2) == 0,
        5 => new JsonArray(1, "two", null),
        _ => new JsonObject { ["k"] = "v", ["n"] = null },
    };

    private JsonObject ObjectSchema(int depth)
    {
        var props = new JsonObject();
        var required = new JsonArray();
        int n = _rng.Next(depth >= 2 ? 3 : 5);
        foreach (var name in Names.OrderBy(_ => _rng.Next()).Take(n))
        {
            props[name] = depth >= 2 ? Scalar(depth + 1) : Value(depth + 1);
            if (_rng.Next(2) == 0) required.Add(name);
        }
        var o = new JsonObject { ["type"] = "object", ["properties"] = props };
        if (required.Count > 0) o["required"] = required;
        switch (_rng.Next(4))
        {
            case 0: o["additionalProperties"] = false; break;
            case 1: o["additionalProperties"] = true; break;
            case 2: o["additionalProperties"] = Scalar(depth + 1); break;
        }
        if (n == 0 && _rng.Next(2) == 0) o.Remove("properties"); // a free object
        return o;
    }

    private JsonObject ArraySchema(int depth)
    {
        var a = new JsonObject { ["type"] = "array", ["items"] = Value(depth + 1) };
        int min = _rng.Next(3);
        if (_rng.Next(2) == 0) a["minItems"] = min;
        if (_rng.Next(2) == 0) a["maxItems"] = min + _rng.Next(3);
        return a;
    }

    // oneOf needs alternatives no value satisfies twice: one per distinct type (integer and number never together).
    private JsonObject OneOf(int depth)
    {
        var types = new[] { "string", "integer", "boolean", "null", "array", "object" }.OrderBy(_ => _rng.Next()).Take(2 + _rng.Next(2));
        var alts = new JsonArray();
        foreach (var t in types)
            alts.Add(t switch
            {
                "array" => new JsonObject { ["type"] = "array", ["items"] = Scalar(depth + 1), ["maxItems"] = 3 },
                "object" => new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["v"] = Scalar(depth + 1) }, ["required"] = new JsonArray("v"), ["additionalProperties"] = false },
                "string" => new JsonObject { ["type"] = "string", ["maxLength"] = 5 },
                _ => new JsonObject { ["type"] = t },
            });
        return new JsonObject { ["oneOf"] = alts };
    }

    private static JsonObject Obj(params (string Key, JsonNode? Value)[] members)
    {
        var o = new JsonObject();
        foreach (var (k, v) in members) o[k] = v;
        return o;
    }
}
