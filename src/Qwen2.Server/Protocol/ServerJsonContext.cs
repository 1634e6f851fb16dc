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
internal sealed partial class ServerJsonContext : JsonSerializerContext;
