using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;
using Qwen2.Native.Generation;
using Qwen2.Server.Engine;

namespace Qwen2.Server.Tests;

/// <summary>
/// The API hosted in process on ASP.NET Core's TestServer, as a .NET app hosts it in its own WebApplication
/// (AddQwen2Server, UseQwen2ApiKey, MapQwen2Server), with HTTP and OpenAI SDK clients that talk to it.
/// </summary>
internal sealed class TestServerHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestServerHost(WebApplication app)
    {
        _app = app;
        Http = app.GetTestClient();
    }

    public static async Task<TestServerHost> StartAsync(Qwen2Pipeline pipeline, Qwen2ServerOptions? options = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddQwen2Server(pipeline, options);
        var app = builder.Build();
        app.UseQwen2ApiKey();
        app.MapQwen2Server();
        app.MapQwen2NotFound();
        await app.StartAsync();
        return new TestServerHost(app);
    }

    public HttpClient Http { get; }

    public ServerEngine Engine => _app.Services.GetRequiredService<ServerEngine>();

    /// <summary>The official OpenAI SDK's chat client, sending its requests through the test server.</summary>
    public ChatClient Chat(string key = "no-key") => new("any-model", new ApiKeyCredential(key), Options());

    public OpenAIClientOptions Options() => new() { Endpoint = new Uri(Http.BaseAddress!, "/v1"), Transport = new HttpClientPipelineTransport(Http) };

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
