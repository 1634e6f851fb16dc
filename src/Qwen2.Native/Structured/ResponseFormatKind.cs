namespace Qwen2.Native.Structured;

/// <summary>What shape a generation's output must take.</summary>
public enum ResponseFormatKind
{
    /// <summary>Free text: no constraint.</summary>
    Text,
    /// <summary>Any JSON object (OpenAI's <c>{"type": "json_object"}</c>).</summary>
    JsonObject,
    /// <summary>A JSON value valid for a JSON Schema (OpenAI's <c>{"type": "json_schema"}</c>).</summary>
    JsonSchema,
}
