using System.Text.Json;

namespace Qwen2.Native.Structured;

/// <summary>
/// The shape a generation's output must take (GenerationOptions.ResponseFormat): free text,
/// any JSON object, or a JSON value valid for a schema. A JSON format constrains decoding: each sampled token is
/// checked against a matcher of the grammar, and only a rejected one costs a mask of the vocabulary and a second draw,
/// so the output is always a valid prefix and generation ends (stop reason EndOfSequence)
/// once the value is complete.
/// </summary>
public sealed class ResponseFormat
{
    private ResponseFormat(ResponseFormatKind kind, JsonElement? schema, JsonLimits limits, JsonGrammar? grammar)
    {
        Kind = kind;
        Schema = schema;
        Limits = limits;
        Grammar = grammar;
    }

    /// <summary>Free text: no constraint (the default).</summary>
    public static ResponseFormat Text { get; } = new(ResponseFormatKind.Text, null, JsonLimits.Default, null);

    /// <summary>Any JSON object, with <see cref="JsonLimits.Default"/> (OpenAI's <c>json_object</c>).</summary>
    public static ResponseFormat JsonObject { get; } = ForJsonObject(JsonLimits.Default);

    /// <summary>What kind of format this is.</summary>
    public ResponseFormatKind Kind { get; }

    /// <summary>The schema of a <see cref="ResponseFormatKind.JsonSchema"/> format; null otherwise.</summary>
    public JsonElement? Schema { get; }

    /// <summary>The bounds put on sizes the schema leaves open, which make every generation end.</summary>
    public JsonLimits Limits { get; }

    /// <summary>The compiled grammar; null for text.</summary>
    internal JsonGrammar? Grammar { get; }

    /// <summary>Any JSON object, within <paramref name="limits"/>.</summary>
    public static ResponseFormat ForJsonObject(JsonLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        limits.Validate();
        return new(ResponseFormatKind.JsonObject, null, limits, SchemaCompiler.AnyObject(limits));
    }

    /// <summary>
    /// A JSON value valid for <paramref name="schema"/> (JSON text), compiled now.
    /// </summary>
    /// <remarks>
    /// <para>Supported: <c>type</c> (a name or a list), <c>properties</c>, <c>required</c>, <c>additionalProperties</c>
    /// (true, false or a schema), <c>items</c> (one schema), <c>minItems</c>, <c>maxItems</c>, <c>enum</c>,
    /// <c>const</c>, <c>minLength</c>, <c>maxLength</c> (in code points), <c>minimum</c>, <c>maximum</c>,
    /// <c>exclusiveMinimum</c>, <c>exclusiveMaximum</c> (numbers, as in drafts 6 and later) on integers and numbers,
    /// exactly (an integer above 1.5 is at least 2; without <c>type</c> they make the value a number), <c>anyOf</c> and
    /// <c>oneOf</c> (both as a union: a value matching several <c>oneOf</c> alternatives is not prevented),
    /// <c>allOf</c> with one part, local <c>$ref</c> (<c>#</c>, <c>#/$defs/…</c>, <c>#/definitions/…</c>, any JSON
    /// pointer into the schema; recursion allowed), <c>$defs</c>/<c>definitions</c>, <c>true</c> and <c>{}</c> (any
    /// value), <c>format: "none"</c>, <c>uniqueItems: false</c>, and annotations (title, description, default,
    /// examples, …), which are ignored.</para>
    /// <para>Refused with a <see cref="JsonSchemaException"/> naming the keyword's JSON pointer: <c>pattern</c>,
    /// <c>format</c> (other than none), <c>patternProperties</c>, <c>propertyNames</c>, <c>min/maxProperties</c>,
    /// <c>multipleOf</c>, the draft-4 boolean <c>exclusiveMinimum/Maximum</c>, <c>if/then/else</c>, <c>not</c>,
    /// <c>allOf</c> with several parts, <c>prefixItems</c> and tuple <c>items</c>, <c>contains</c>,
    /// <c>uniqueItems: true</c>, <c>dependentRequired/Schemas</c>, <c>unevaluated*</c>, dynamic and remote references,
    /// keywords beside <c>$ref</c> or beside <c>anyOf</c>/<c>oneOf</c>, and schemas no value satisfies.</para>
    /// <para>Output: compact JSON (at most one space after ':' and ','; no newlines), object properties in schema order
    /// (an optional one may be left out), no extra keys unless <c>additionalProperties</c> allows them or the object
    /// names no properties, numbers without exponents (at most 15 digits each side of the point; a bounded one 15
    /// significant digits in all, and '-' only where its range has negative values), strings of well-formed UTF-8 with
    /// JSON escapes. Sizes the schema leaves open are bounded by <paramref name="limits"/>
    /// (<see cref="JsonLimits.Default"/> when null), so generation always ends.</para>
    /// </remarks>
    /// <exception cref="JsonSchemaException">The schema is not JSON, or outside the subset above; the message names the JSON path.</exception>
    public static ResponseFormat JsonSchema(string schema, JsonLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(schema);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(schema); }
        catch (JsonException e) { throw new JsonSchemaException("#", $"the schema is not valid JSON ({e.Message})"); }
        using (doc) return JsonSchema(doc.RootElement, limits);
    }

    /// <summary>As <see cref="JsonSchema(string, JsonLimits)"/>, from a parsed schema (copied).</summary>
    /// <exception cref="JsonSchemaException">The schema is outside the supported subset; the message names the JSON path.</exception>
    public static ResponseFormat JsonSchema(JsonElement schema, JsonLimits? limits = null)
    {
        limits ??= JsonLimits.Default;
        limits.Validate();
        var copy = schema.Clone();
        return new(ResponseFormatKind.JsonSchema, copy, limits, SchemaCompiler.Compile(copy, limits));
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ResponseFormatKind.JsonSchema => $"json_schema {Schema!.Value.GetRawText()}",
        ResponseFormatKind.JsonObject => "json_object",
        _ => "text",
    };
}
