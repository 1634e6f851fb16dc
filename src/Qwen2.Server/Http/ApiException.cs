namespace Qwen2.Server.Http;

/// <summary>
/// A request the server refuses, with the HTTP status and the OpenAI error fields it answers with
/// (<c>{"error": {"message", "type", "code", "param"}}</c>, as llama.cpp and vLLM shape them).
/// </summary>
internal sealed class ApiException(int status, string type, string message, string? param = null, int? retryAfterSeconds = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public int? RetryAfterSeconds { get; } = retryAfterSeconds;

    public static ApiException BadRequest(string message, string? param = null) => new(400, "invalid_request_error", message, param);
}
