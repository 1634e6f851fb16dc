namespace Qwen2.Native.Structured;

/// <summary>
/// A JSON Schema the constrained decoder cannot honour: malformed, using a keyword outside the supported subset
/// (<see cref="ResponseFormat.JsonSchema(string, JsonLimits)"/> lists it), or with no value at all. An
/// <see cref="ArgumentException"/>, so a server answers it with a 400.
/// </summary>
public sealed class JsonSchemaException : ArgumentException
{
    /// <summary>Creates the exception for the schema location <paramref name="schemaPath"/> (a JSON pointer such as <c>#/properties/a</c>).</summary>
    public JsonSchemaException(string schemaPath, string message)
        : base($"{schemaPath}: {message}")
    {
        SchemaPath = schemaPath;
    }

    /// <summary>Where in the schema the problem is, as a JSON pointer fragment (<c>#</c> is the root).</summary>
    public string SchemaPath { get; }
}
