using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Qwen2.Server.Protocol;

/// <summary>
/// Source-generated serialization of every response body (no reflection, so the server stays Native-AOT clean).
/// Requests are read field by field from a JsonDocument instead, so a bad field gets an error that names it.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(TextCompletion))]
[JsonSerializable(typeof(TokenizeResponse))]
[JsonSerializable(typeof(DetokenizeResponse))]
internal sealed partial class ServerJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The context responses are written with: <see cref="Default"/>'s naming and null handling, and text kept as UTF-8
    /// (only quotes, backslashes and control characters escaped), as OpenAI, vLLM and llama.cpp send it; the default
    /// encoder's \uXXXX for every non-ASCII or HTML-sensitive character would make each streamed piece of text several
    /// times larger. The bodies are application/json, never embedded in HTML.
    /// </summary>
    public static ServerJsonContext Api { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
