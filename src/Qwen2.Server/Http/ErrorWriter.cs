using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Qwen2.Server.Protocol;

namespace Qwen2.Server.Http;

/// <summary>Writes OpenAI-shaped error bodies.</summary>
internal static class ErrorWriter
{
    public static Task WriteAsync(HttpContext context, ApiException e) => WriteAsync(context, e.Status, e.Type, e.Message, e.Param, e.RetryAfterSeconds);

    public static async Task WriteAsync(HttpContext context, int status, string type, string message, string? param = null, int? retryAfterSeconds = null)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (retryAfterSeconds is int seconds) response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (status == 401) response.Headers.WWWAuthenticate = "Bearer";
        await JsonSerializer.SerializeAsync(response.Body, new ErrorResponse(new ErrorBody(message, type, status, param)), ServerJsonContext.Api.ErrorResponse, context.RequestAborted);
    }
}
