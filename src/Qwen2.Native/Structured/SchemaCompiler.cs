using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Qwen2.Native.Structured;

/// <summary>
/// Compiles a JSON Schema (the subset <see cref="ResponseFormat.JsonSchema(string, JsonLimits)"/> documents) to a
/// <see cref="GrammarNode"/> graph. Anything outside the subset is refused with the JSON pointer of the keyword, rather
/// than silently ignored: an ignored constraint would let through output the caller's validator rejects.
/// </summary>
internal sealed class SchemaCompiler
{
    // Keywords that only describe: they never constrain a value.
    private static readonly HashSet<string> Annotations =
    [
        "title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly",
        "$schema", "$id", "$anchor", "$vocabulary", "contentMediaType", "contentEncoding",
    ];

    // The standard keywords outside the supported subset: refused, never ignored.
    private static readonly HashSet<string> Refused =
    [
        "pattern", "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
        "dependentSchemas", "dependencies", "if", "then", "else", "not", "prefixItems", "contains", "minContains",
        "maxContains", "additionalItems", "unevaluatedItems", "unevaluatedProperties", "multipleOf", "$dynamicRef", "$dynamicAnchor", "$recursiveRef",
        "$recursiveAnchor", "contentSchema",
    ];

    internal static readonly JsonWriterOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    private readonly JsonElement _root;
    private readonly JsonLimits _limits;
    private readonly Dictionary<string, RefNode> _refs = new(StringComparer.Ordinal);
    private readonly List<GrammarNode> _nodes = [];
    private GrammarNode? _any;

    private SchemaCompiler(JsonElement root, JsonLimits limits)
    {
        _root = root;
        _limits = limits;
    }

    /// <summary>The grammar of <paramref name="schema"/>.</summary>
    /// <exception cref="JsonSchemaException">The schema is outside the supported subset or has no value.</exception>
    public static JsonGrammar Compile(JsonElement schema, JsonLimits limits)
    {
        var c = new SchemaCompiler(schema, limits);
        var root = c.Node(schema, "#");
        return c.Finish(root, "#");
    }

    /// <summary>The grammar of any JSON object (json_object mode).</summary>
    public static JsonGrammar AnyObject(JsonLimits limits)
    {
        var c = new SchemaCompiler(default, limits);
        var root = c.Add(new ObjectNode { Properties = [], Additional = c.Any(), MaxAdditional = limits.MaxAdditionalProperties, MaxKeyLength = limits.MaxKeyLength });
        return c.Finish(root, "#");
    }

    private JsonGrammar Finish(GrammarNode root, string path)
    {
        foreach (var n in _nodes)
        {
            if (n is ObjectNode o) o.Seal();
            try { n.Resolve(); }
            catch (InvalidOperationException) { throw new JsonSchemaException(path, "a $ref refers only to references, never to a schema"); }
        }
        ComputeMinDepths();
        if (_nodes.Any(n => n is LiteralNode { Check: not null }))
        {
            // enum/const beside other keywords: keep the values the rest of the schema accepts, then recount.
            foreach (var n in _nodes)
                if (n is LiteralNode { Check: { } check } lit)
                {
                    var grammar = new JsonGrammar(check, _limits);
                    lit.Values = lit.Values.Where(grammar.AcceptsWhole).ToArray();
                    lit.Check = null;
                }
            foreach (var n in _nodes) n.MinDepth = GrammarNode.Unreachable;
            ComputeMinDepths();
        }
        int need = root.Resolve().MinDepth;
        if (need >= GrammarNode.Unreachable) throw new JsonSchemaException(path, "no JSON value satisfies this schema (an empty enum, a false schema, min above max, bounds no number of 15 digits meets, or required properties that recurse forever)");
        if (need > _limits.MaxDepth) throw new JsonSchemaException(path, $"every value of this schema nests {need} objects or arrays, more than JsonLimits.MaxDepth ({_limits.MaxDepth})");
        return new JsonGrammar(root, _limits);
    }

    /// <summary>Fewest containers per node: a fixpoint from "unreachable" down, so recursion through $ref converges.</summary>
    private void ComputeMinDepths()
    {
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var n in _nodes)
            {
                int d = n.ComputeMinDepth();
                if (d < n.MinDepth) { n.MinDepth = d; changed = true; }
            }
        }
    }

    private T Add<T>(T node) where T : GrammarNode
    {
        _nodes.Add(node);
        return node;
    }

    /// <summary>Any JSON value: one shared node, recursive through its containers.</summary>
    private GrammarNode Any()
    {
        if (_any is not null) return _any;
        var any = Add(new UnionNode { Alternatives = [] });
        _any = any;
        any.Alternatives =
        [
            Add(new ObjectNode { Properties = [], Additional = any, MaxAdditional = _limits.MaxAdditionalProperties, MaxKeyLength = _limits.MaxKeyLength }),
            Add(new ArrayNode { Items = any, Min = 0, Max = _limits.MaxItems }),
            Add(new StringNode { Min = 0, Max = _limits.MaxStringLength }),
            Add(new NumberNode()),
            Add(new LiteralNode { Values = [Utf8("true"), Utf8("false"), Utf8("null")] }),
        ];
        return any;
    }

    private GrammarNode Node(JsonElement s, string path)
    {
        if (s.ValueKind == JsonValueKind.True) return Any();
        if (s.ValueKind == JsonValueKind.False) return Add(new UnionNode { Alternatives = [] });
        if (s.ValueKind != JsonValueKind.Object) throw new JsonSchemaException(path, $"a schema must be an object or a boolean, not {Kind(s)}");

        foreach (var p in s.EnumerateObject())
        {
            if (Refused.Contains(p.Name)) throw new JsonSchemaException($"{path}/{Escape(p.Name)}", $"the keyword \"{p.Name}\" is not supported by constrained decoding");
            if (p.Name == "format" && !(p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is "none" or ""))
                throw new JsonSchemaException($"{path}/format", $"\"format\": {p.Value.GetRawText()} is not supported by constrained decoding (only \"none\")");
            if (p.Name == "uniqueItems" && p.Value.ValueKind == JsonValueKind.True)
                throw new JsonSchemaException($"{path}/uniqueItems", "\"uniqueItems\": true is not supported by constrained decoding");
            if (p.Name == "items" && p.Value.ValueKind == JsonValueKind.Array)
                throw new JsonSchemaException($"{path}/items", "tuple \"items\" (an array of schemas) is not supported by constrained decoding");
            if (p.Name == "$id" && path != "#")
                throw new JsonSchemaException($"{path}/$id", "\"$id\" inside a schema changes the base of references, which constrained decoding does not support");
        }

        if (s.TryGetProperty("$ref", out var r))
        {
            foreach (var p in s.EnumerateObject())
                if (p.Name != "$ref" && p.Name != "$defs" && p.Name != "definitions" && !Annotations.Contains(p.Name) && !p.Name.StartsWith("x-", StringComparison.Ordinal))
                    throw new JsonSchemaException($"{path}/{Escape(p.Name)}", $"\"{p.Name}\" beside \"$ref\" is not supported by constrained decoding (wrap them in allOf with one part, or move them into the referenced schema)");
            return Reference(r, $"{path}/$ref");
        }

        if (s.TryGetProperty("allOf", out var all))
        {
            if (all.ValueKind != JsonValueKind.Array || all.GetArrayLength() == 0) throw new JsonSchemaException($"{path}/allOf", "allOf must be a non-empty array of schemas");
            bool others = s.EnumerateObject().Any(p => p.Name != "allOf" && p.Name != "$defs" && p.Name != "definitions" && !Annotations.Contains(p.Name));
            var parts = all.EnumerateArray().Where(e => e.ValueKind != JsonValueKind.True && !(e.ValueKind == JsonValueKind.Object && !e.EnumerateObject().Any())).ToArray();
            if (others || parts.Length > 1)
                throw new JsonSchemaException($"{path}/allOf", "allOf is supported with one part only (merging several parts' constraints is not)");
            return parts.Length == 0 ? Any() : Node(parts[0], $"{path}/allOf/0");
        }

        foreach (var key in (string[])["anyOf", "oneOf"])
        {
            if (!s.TryGetProperty(key, out var alts)) continue;
            if (alts.ValueKind != JsonValueKind.Array || alts.GetArrayLength() == 0) throw new JsonSchemaException($"{path}/{key}", $"{key} must be a non-empty array of schemas");
            foreach (var other in s.EnumerateObject())
                if (other.Name != key && other.Name != "$defs" && other.Name != "definitions" && !Annotations.Contains(other.Name))
                    throw new JsonSchemaException($"{path}/{Escape(other.Name)}", $"\"{other.Name}\" beside \"{key}\" is not supported by constrained decoding (move it into each alternative)");
            var list = new List<GrammarNode>();
            int i = 0;
            foreach (var a in alts.EnumerateArray()) list.Add(Node(a, $"{path}/{key}/{i++}"));
            return Add(new UnionNode { Alternatives = list.ToArray() });
        }

        if (s.TryGetProperty("enum", out var en) || s.TryGetProperty("const", out en))
        {
            bool isConst = !s.TryGetProperty("enum", out _);
            string at = $"{path}/{(isConst ? "const" : "enum")}";
            if (!isConst && en.ValueKind != JsonValueKind.Array) throw new JsonSchemaException(at, "enum must be an array");
            var values = isConst ? [en] : en.EnumerateArray().ToArray();
            var kept = new List<byte[]>();
            foreach (var v in values)
            {
                var bytes = CompactBytes(v);
                if (!kept.Any(k => k.AsSpan().SequenceEqual(bytes))) kept.Add(bytes);
            }
            // The other keywords still apply to the listed values: Finish keeps those the rest of the schema accepts.
            var rest = IsWithoutSiblings(s, isConst) ? null : Typed(s, path);
            return Add(new LiteralNode { Values = kept.ToArray(), Check = rest });
        }

        return Typed(s, path);
    }

    // enum/const with nothing else to check: every listed value stands as written.
    private static bool IsWithoutSiblings(JsonElement s, bool isConst) =>
        s.EnumerateObject().All(p => p.Name == (isConst ? "const" : "enum") || p.Name is "$defs" or "definitions" || Annotations.Contains(p.Name));

    /// <summary>The schema by its "type" (one or a list), inferred from its keywords when it has none.</summary>
    private GrammarNode Typed(JsonElement s, string path)
    {
        string[] types;
        if (s.TryGetProperty("type", out var t))
        {
            if (t.ValueKind == JsonValueKind.String) types = [t.GetString()!];
            else if (t.ValueKind == JsonValueKind.Array && t.GetArrayLength() > 0 && t.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
                types = t.EnumerateArray().Select(e => e.GetString()!).Distinct().ToArray();
            else throw new JsonSchemaException($"{path}/type", "type must be a type name or a non-empty array of them");
        }
        else if (Has(s, "properties", "required", "additionalProperties")) types = ["object"];
        else if (Has(s, "items", "minItems", "maxItems")) types = ["array"];
        else if (Has(s, "minLength", "maxLength")) types = ["string"];
        else if (Has(s, Bounds)) types = ["number"];
        else return Any();

        var nodes = new GrammarNode[types.Length];
        for (int i = 0; i < types.Length; i++)
            nodes[i] = types[i] switch
            {
                "object" => ObjectOf(s, path),
                "array" => ArrayOf(s, path),
                "string" => StringOf(s, path),
                "number" => NumberOf(s, path, integer: false),
                "integer" => NumberOf(s, path, integer: true),
                "boolean" => Add(new LiteralNode { Values = [Utf8("true"), Utf8("false")] }),
                "null" => Add(new LiteralNode { Values = [Utf8("null")] }),
                _ => throw new JsonSchemaException($"{path}/type", $"unknown type \"{types[i]}\""),
            };
        return nodes.Length == 1 ? nodes[0] : Add(new UnionNode { Alternatives = nodes });
    }

    private GrammarNode ObjectOf(JsonElement s, string path)
    {
        var required = new List<string>();
        if (s.TryGetProperty("required", out var req))
        {
            if (req.ValueKind != JsonValueKind.Array || !req.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
                throw new JsonSchemaException($"{path}/required", "required must be an array of property names");
            required.AddRange(req.EnumerateArray().Select(e => e.GetString()!).Distinct());
        }
        var props = new List<PropertyRule>();
        bool hasProperties = s.TryGetProperty("properties", out var ps);
        if (hasProperties)
        {
            if (ps.ValueKind != JsonValueKind.Object) throw new JsonSchemaException($"{path}/properties", "properties must be an object");
            foreach (var p in ps.EnumerateObject())
                props.Add(new PropertyRule(p.Name, KeyBytes(p.Name), Node(p.Value, $"{path}/properties/{Escape(p.Name)}"), required.Contains(p.Name)));
        }
        // Unset additionalProperties: extra keys are allowed but never needed, so an object with named properties gets
        // none (as llama.cpp's json-schema-to-grammar does) and an object without any takes free keys.
        GrammarNode? additional = hasProperties ? null : Any();
        if (s.TryGetProperty("additionalProperties", out var ap))
            additional = ap.ValueKind == JsonValueKind.False ? null : Node(ap, $"{path}/additionalProperties");
        foreach (var name in required)
        {
            if (props.Any(p => p.Name == name)) continue;
            if (additional is null) throw new JsonSchemaException($"{path}/required", $"\"{name}\" is required but neither a property nor allowed by additionalProperties");
            props.Add(new PropertyRule(name, KeyBytes(name), additional, true));
        }
        return Add(new ObjectNode
        {
            Properties = props.ToArray(), Additional = additional,
            MaxAdditional = _limits.MaxAdditionalProperties, MaxKeyLength = _limits.MaxKeyLength,
        });
    }

    private GrammarNode ArrayOf(JsonElement s, string path)
    {
        var items = s.TryGetProperty("items", out var it) ? Node(it, $"{path}/items") : Any();
        int min = Count(s, "minItems", path) ?? 0;
        int max = Count(s, "maxItems", path) ?? Math.Max(min, _limits.MaxItems);
        return Add(new ArrayNode { Items = items, Min = min, Max = max });
    }

    private GrammarNode StringOf(JsonElement s, string path)
    {
        int min = Count(s, "minLength", path) ?? 0;
        int max = Count(s, "maxLength", path) ?? Math.Max(min, _limits.MaxStringLength);
        return Add(new StringNode { Min = min, Max = max });
    }

    private static readonly string[] Bounds = ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"];

    /// <summary>
    /// A number or integer with its bounds as an inclusive range of scaled values (units, or 10^-15 for a number), each
    /// bound rounded exactly from its JSON text: an integer above 1.5 is at least 2, a number above 0.1 at least
    /// 0.100000000000001. Bounds beyond the 15 digits the matcher writes are clamped to them.
    /// </summary>
    private NumberNode NumberOf(JsonElement s, string path, bool integer)
    {
        var node = new NumberNode { Integer = integer };
        Int128 lo = -node.MaxAbs, hi = node.MaxAbs;
        foreach (var key in Bounds)
        {
            if (!s.TryGetProperty(key, out var v)) continue;
            if (v.ValueKind != JsonValueKind.Number)
                throw new JsonSchemaException($"{path}/{key}", v.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? $"{key} must be a number (the draft-4 boolean form is not supported; give the bound itself, as drafts 6 and later do)"
                    : $"{key} must be a number");
            node.Bounded = true;
            string raw = v.GetRawText();
            int scale = integer ? 0 : NumberNode.MaxDigits;
            switch (key)
            {
                case "minimum": lo = Int128.Max(lo, ScaledBound(raw, scale, ceiling: true)); break;
                case "exclusiveMinimum": lo = Int128.Max(lo, ScaledBound(raw, scale, ceiling: false) + 1); break;
                case "maximum": hi = Int128.Min(hi, ScaledBound(raw, scale, ceiling: false)); break;
                default: hi = Int128.Min(hi, ScaledBound(raw, scale, ceiling: true) - 1); break;
            }
        }
        node.Lo = lo;
        node.Hi = hi;
        node.Seal();
        return Add(node);
    }

    /// <summary>
    /// The ceiling or floor of <paramref name="raw"/> (a JSON number's text) times 10^<paramref name="scale"/>, exact,
    /// clamped to ±10^32 (past any value the matcher writes).
    /// </summary>
    internal static Int128 ScaledBound(string raw, int scale, bool ceiling)
    {
        var big = BigInteger.Pow(10, 32);
        int i = 0;
        bool negative = raw[0] == '-';
        if (negative) i++;
        BigInteger m = BigInteger.Zero;
        long exp = scale;
        for (; i < raw.Length && char.IsAsciiDigit(raw[i]); i++) m = m * 10 + (raw[i] - '0');
        if (i < raw.Length && raw[i] == '.')
            for (i++; i < raw.Length && char.IsAsciiDigit(raw[i]); i++) { m = m * 10 + (raw[i] - '0'); exp--; }
        if (i < raw.Length && raw[i] is 'e' or 'E')
        {
            i++;
            bool down = i < raw.Length && raw[i] == '-';
            if (i < raw.Length && raw[i] is '+' or '-') i++;
            long e = 0;
            for (; i < raw.Length && char.IsAsciiDigit(raw[i]); i++) e = Math.Min(e * 10 + (raw[i] - '0'), 1_000_000);
            exp += down ? -e : e;
        }
        if (m.IsZero) return 0;
        int digits = m.ToString(CultureInfo.InvariantCulture).Length;   // |value| is below 10^(digits + exp)
        BigInteger q;
        bool exact;
        if (exp >= 0)
        {
            if (digits + exp > 34) return negative ? -(Int128)big : (Int128)big;
            q = m * BigInteger.Pow(10, (int)exp);
            exact = true;
        }
        else if (digits + exp < 0) { q = BigInteger.Zero; exact = false; }   // below 0.1 in magnitude
        else
        {
            q = BigInteger.DivRem(m, BigInteger.Pow(10, (int)-exp), out var rem);
            exact = rem.IsZero;
        }
        // q is the magnitude truncated: rounding away from zero is the ceiling of a positive, the floor of a negative.
        if (!exact && ceiling != negative) q += 1;
        if (q > big) q = big;
        return negative ? -(Int128)q : (Int128)q;
    }

    private static int? Count(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out var d) || d < 0 || d != Math.Floor(d))
            throw new JsonSchemaException($"{path}/{key}", $"{key} must be a non-negative integer");
        // Beyond a million characters or items no generation gets there anyway.
        return (int)Math.Min(d, 1_000_000);
    }

    private GrammarNode Reference(JsonElement r, string path)
    {
        if (r.ValueKind != JsonValueKind.String) throw new JsonSchemaException(path, "$ref must be a string");
        string target = r.GetString()!;
        if (!target.StartsWith('#')) throw new JsonSchemaException(path, $"\"{target}\" is not a local reference; only references into this schema (#/$defs/..., #/definitions/...) are supported");
        if (_refs.TryGetValue(target, out var known)) return known;
        var node = Add(new RefNode());
        _refs[target] = node;
        var element = Pointer(target, path);
        node.Target = Node(element, target);
        return node;
    }

    private JsonElement Pointer(string target, string path)
    {
        string pointer = Uri.UnescapeDataString(target[1..]);
        var e = _root;
        if (pointer.Length == 0) return e;
        if (pointer[0] != '/') throw new JsonSchemaException(path, $"\"{target}\" is not a JSON pointer (anchors are not supported)");
        foreach (var raw in pointer[1..].Split('/'))
        {
            string part = raw.Replace("~1", "/").Replace("~0", "~");
            if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty(part, out var next)) e = next;
            else if (e.ValueKind == JsonValueKind.Array && int.TryParse(part, out int i) && i >= 0 && i < e.GetArrayLength()) e = e[i];
            else throw new JsonSchemaException(path, $"\"{target}\" points to nothing in this schema");
        }
        return e;
    }

    private static bool Has(JsonElement s, params string[] keys) => keys.Any(k => s.TryGetProperty(k, out _));

    private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();

    /// <summary>A JSON pointer segment for <paramref name="name"/>.</summary>
    private static string Escape(string name) => name.Replace("~", "~0").Replace("/", "~1");

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>The key as it is written: a JSON string, quotes included, non-ASCII left as it is.</summary>
    private static byte[] KeyBytes(string name) => Encoding.UTF8.GetBytes(JsonEncodedText.Encode(name, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value is var v ? $"\"{v}\"" : "");

    internal static byte[] CompactBytes(JsonElement v)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Compact)) v.WriteTo(w);
        return ms.ToArray();
    }
}
