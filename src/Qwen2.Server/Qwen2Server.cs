using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Qwen2.Native.Generation;
using Qwen2.Server.Engine;

namespace Qwen2.Server;

/// <summary>
/// A standalone OpenAI-compatible server (what <c>qwen2 serve</c> runs): Kestrel on one address, the API's endpoints,
/// the API key check and JSON 404s. It listens at once and answers 503 (GET /health: <c>{"status":"loading"}</c>)
/// until the model has loaded. SIGTERM and SIGINT stop it: it stops accepting, lets in-flight requests finish for up to
/// the shutdown timeout, then ends the rest.
/// </summary>
public sealed class Qwen2Server : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Func<Qwen2Pipeline> _load;
    private Qwen2Pipeline? _pipeline;
    private readonly bool _ownsPipeline;

    private Qwen2Server(WebApplication app, Func<Qwen2Pipeline> load, bool ownsPipeline)
    {
        _app = app;
        _load = load;
        _ownsPipeline = ownsPipeline;
    }

    /// <summary>
    /// Builds a server that will load its model with <paramref name="load"/> once listening (the server disposes the
    /// pipeline when it is disposed).
    /// </summary>
    /// <param name="load">Loads the model, e.g. <c>() =&gt; Qwen2Pipeline.FromPretrained(dir)</c>.</param>
    /// <param name="options">The API's options.</param>
    /// <param name="host">An IP address to bind, or "localhost" (loopback, the default).</param>
    /// <param name="port">The TCP port; 0 picks a free one (<see cref="Address"/> names it once started).</param>
    /// <param name="shutdownTimeout">How long in-flight requests may run on after a stop signal (default 10 s).</param>
    /// <exception cref="ArgumentException"><paramref name="host"/> is not an IP address or "localhost".</exception>
    public static Qwen2Server Create(Func<Qwen2Pipeline> load, Qwen2ServerOptions? options = null, string host = "127.0.0.1", int port = 8080, TimeSpan? shutdownTimeout = null)
        => Build(load ?? throw new ArgumentNullException(nameof(load)), ownsPipeline: true, options, host, port, shutdownTimeout);

    /// <summary>Builds a server over a pipeline the caller loaded and keeps (it is ready as soon as it starts).</summary>
    public static Qwen2Server Create(Qwen2Pipeline pipeline, Qwen2ServerOptions? options = null, string host = "127.0.0.1", int port = 8080, TimeSpan? shutdownTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return Build(() => pipeline, ownsPipeline: false, options, host, port, shutdownTimeout);
    }

    private static Qwen2Server Build(Func<Qwen2Pipeline> load, bool ownsPipeline, Qwen2ServerOptions? options, string host, int port, TimeSpan? shutdownTimeout)
    {
        options ??= new Qwen2ServerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var address = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.TryParse(host.Trim('[', ']'), out var ip) ? ip
            : throw new ArgumentException($"host \"{host}\" is not an IP address (e.g. 127.0.0.1, ::1, 0.0.0.0) or localhost", nameof(host));
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, port);
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.AddServerHeader = false;
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(10));
        builder.Services.AddQwen2ServerCore(options, pipeline: null);
        var app = builder.Build();
        app.UseQwen2ApiKey();
        app.MapQwen2Server();
        app.MapQwen2NotFound();
        return new Qwen2Server(app, load, ownsPipeline);
    }

    /// <summary>The address it listens on (the real port when 0 was asked for); null before <see cref="StartAsync"/>.</summary>
    public Uri? Address { get; private set; }

    /// <summary>The engine behind the endpoints (tests read its generator and pool).</summary>
    internal ServerEngine Engine => _app.Services.GetRequiredService<ServerEngine>();

    /// <summary>Stops the server when cancelled: <see cref="WaitForShutdownAsync"/> returns.</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>
    /// Starts listening, then loads the model on the calling thread (requests get 503 meanwhile), and returns once it
    /// serves. If loading fails the server is stopped and the exception is thrown.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _app.StartAsync(cancellationToken);
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        Address = new Uri(addresses.First());
        try
        {
            _pipeline = await Task.Run(_load, cancellationToken);
            _app.Services.GetRequiredService<ServerEngine>().Attach(_pipeline);
        }
        catch
        {
            await _app.StopAsync(CancellationToken.None);
            throw;
        }
    }

    /// <summary>Returns when the server has stopped (SIGTERM, SIGINT, <see cref="StopAsync"/>, or the token).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops accepting, lets in-flight requests finish within the shutdown timeout, and stops.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    /// <summary>Stops the server if it runs, ends what is left of the generator, and disposes a pipeline it loaded.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        if (_ownsPipeline) _pipeline?.Dispose();
    }
}
