using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using Qwen2.Native.Generation;
using Qwen2.Server.Engine;
using Qwen2.Server.Http;

namespace Qwen2.Server;

/// <summary>
/// Hosts the OpenAI-compatible API in an ASP.NET Core app: <see cref="AddQwen2Server"/> registers the model,
/// <see cref="UseQwen2ApiKey"/> guards the app with the options' API key, and <see cref="MapQwen2Server"/> maps
/// /health, /v1/models, /v1/chat/completions, /v1/completions, /tokenize, /detokenize and /metrics.
/// </summary>
public static class Qwen2ServerExtensions
{
    /// <summary>
    /// Registers <paramref name="pipeline"/> (which the caller keeps and disposes after the app) behind a continuous-batching
    /// generator, with the server's metrics exported for /metrics.
    /// </summary>
    public static IServiceCollection AddQwen2Server(this IServiceCollection services, Qwen2Pipeline pipeline, Qwen2ServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        services.AddQwen2ServerCore(options ?? new Qwen2ServerOptions(), pipeline);
        return services;
    }

    /// <summary>Registers the engine; <paramref name="pipeline"/> null leaves it loading until <see cref="ServerEngine.Attach"/>.</summary>
    internal static IServiceCollection AddQwen2ServerCore(this IServiceCollection services, Qwen2ServerOptions options, Qwen2Pipeline? pipeline)
    {
        ArgumentNullException.ThrowIfNull(services);
        options.Validate();
        services.AddMetrics();
        services.AddSingleton(sp =>
        {
            var engine = new ServerEngine(options, sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
            if (pipeline is not null) engine.Attach(pipeline);
            return engine;
        });
        services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(ServerMetrics.MeterName)
            .AddView("qwen2_time_to_first_token", new ExplicitBucketHistogramConfiguration { Boundaries = ServerMetrics.LatencyBuckets })
            .AddView("qwen2_time_per_output_token", new ExplicitBucketHistogramConfiguration { Boundaries = ServerMetrics.LatencyBuckets })
            .AddPrometheusExporter());
        if (options.CorsOrigin is { Length: > 0 } origin)
            services.AddCors(c => c.AddDefaultPolicy(p => (origin == "*" ? p.AllowAnyOrigin() : p.WithOrigins(origin)).AllowAnyHeader().AllowAnyMethod()));
        return services;
    }

    /// <summary>
    /// Asks every request but GET /health for the options' API key (<c>Authorization: Bearer KEY</c>, compared in
    /// constant time) and answers 401 otherwise; with no key set it lets everything through. Adds CORS first when the
    /// options name an origin. Call it before the endpoints run (after UseRouting, when the app calls that).
    /// </summary>
    public static IApplicationBuilder UseQwen2ApiKey(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var options = app.ApplicationServices.GetRequiredService<ServerEngine>().Options;
        if (options.CorsOrigin is { Length: > 0 }) app.UseCors();
        var check = string.IsNullOrEmpty(options.ApiKey) ? null : new ApiKeyCheck(options.ApiKey);
        return app.Use(next => ApiKeyCheck.Middleware(next, check));
    }

    /// <summary>Maps the API's endpoints (the app must have called <see cref="AddQwen2Server"/>).</summary>
    public static IEndpointRouteBuilder MapQwen2Server(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGet("/health", Handlers.Json(Handlers.Health));
        endpoints.MapGet("/v1/models", Handlers.Json(Handlers.Models));
        endpoints.MapPost("/v1/chat/completions", Handlers.Json(Handlers.Chat));
        endpoints.MapPost("/v1/completions", Handlers.Json(Handlers.Completions));
        endpoints.MapPost("/v1/embeddings", Handlers.Json(EmbeddingsHandler.Handle));
        endpoints.MapPost("/tokenize", Handlers.Json(Handlers.Tokenize));
        endpoints.MapPost("/detokenize", Handlers.Json(Handlers.Detokenize));
        endpoints.MapPrometheusScrapingEndpoint("/metrics");
        return endpoints;
    }

    /// <summary>Answers every path no endpoint matches with a 404 in the API's error shape.</summary>
    public static IEndpointRouteBuilder MapQwen2NotFound(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapFallback(Handlers.Json(Handlers.NotFound));
        return endpoints;
    }
}
