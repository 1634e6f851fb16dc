using System.Text.Json;
using Qwen2.Native.Structured;

namespace Qwen2.Server.Http;

/// <summary>
/// A chat request's <c>response_format</c>, as OpenAI's API has it: <c>{"type": "text"}</c>, <c>{"type": "json_object"}</c>,
/// or <c>{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}</c>; the reply is constrained to it.
/// </summary>
internal static class ResponseFormats
{
    public static ResponseFormat Read(JsonFields f)
    {
        if (f.Get("response_format") is not { } e) return ResponseFormat.Text;
        if (e.ValueKind != JsonValueKind.Object) throw JsonFields.Mistyped("response_format", "an object", e);
        var r = new JsonFields(e);
        switch (r.String("type"))
        {
            case "text": return ResponseFormat.Text;
            case "json_object": return ResponseFormat.JsonObject;
            case "json_schema":
                if (r.Get("json_schema") is not { ValueKind: JsonValueKind.Object } js)
                    throw ApiException.BadRequest("response_format.json_schema is required: {\"name\", \"schema\"}", "response_format");
                var j = new JsonFields(js);
                if (j.String("name") is not { Length: > 0 }) throw ApiException.BadRequest("response_format.json_schema.name is required", "response_format");
                _ = j.Bool("strict"); // the output is always valid for the schema: strict or not
                if (j.Get("schema") is not { } schema) return ResponseFormat.JsonObject; // OpenAI: no schema, any JSON object
                if (schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True))
                    throw JsonFields.Mistyped("response_format.json_schema.schema", "a JSON Schema object", schema);
                try
                {
                    return ResponseFormat.JsonSchema(schema);
                }
                catch (JsonSchemaException ex)
                {
                    throw ApiException.BadRequest($"response_format.json_schema.schema: {ex.Message}", "response_format");
                }
            case null: throw ApiException.BadRequest("response_format.type is required: text, json_object or json_schema", "response_format");
            case var other: throw ApiException.BadRequest($"response_format.type \"{other}\" is not supported; use text, json_object or json_schema", "response_format");
        }
    }
}
