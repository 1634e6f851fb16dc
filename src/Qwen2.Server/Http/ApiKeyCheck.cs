using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Qwen2.Server.Http;

/// <summary>
/// The <c>Authorization: Bearer KEY</c> check on every path but /health. Both keys are hashed and the hashes compared
/// in constant time, so neither the key's content nor its length shows in the time an answer takes.
/// </summary>
internal sealed class ApiKeyCheck(string key)
{
    private readonly byte[] _expected = SHA256.HashData(Encoding.UTF8.GetBytes(key));

    public bool Accepts(HttpRequest request)
    {
        string header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        string given = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : "";
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(given));
        return CryptographicOperations.FixedTimeEquals(hash, _expected) && given.Length > 0;
    }

    public static RequestDelegate Middleware(RequestDelegate next, ApiKeyCheck? check) => async context =>
    {
        bool open = check is null || context.Request.Path.Equals("/health", StringComparison.OrdinalIgnoreCase) || HttpMethods.IsOptions(context.Request.Method);
        if (open || check!.Accepts(context.Request))
        {
            await next(context);
            return;
        }
        string message = context.Request.Headers.Authorization.Count == 0
            ? "no API key: send the header Authorization: Bearer KEY"
            : "invalid API key";
        await ErrorWriter.WriteAsync(context, 401, "authentication_error", message);
    };
}
