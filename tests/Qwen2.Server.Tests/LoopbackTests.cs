using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Qwen2.Native.Generation;
using Qwen2.Native.Tests;
using Msg = Qwen2.Native.Text.ChatMessage;

namespace Qwen2.Server.Tests;

/// <summary>
/// The standalone server (what qwen2 serve runs) over a real loopback socket: clients that go away, concurrent
/// clients, loading and shutdown.
/// </summary>
public sealed class LoopbackTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<Qwen2Server> Start(Qwen2Pipeline pipeline, Qwen2ServerOptions? options = null, TimeSpan? shutdownTimeout = null)
    {
        var server = Qwen2Server.Create(pipeline, options, "127.0.0.1", 0, shutdownTimeout);
        await server.StartAsync();
        return server;
    }

    /// <summary>Waits up to <paramref name="limit"/> for the generator to hold no request and no KV block.</summary>
    private static async Task<bool> Freed(Qwen2Server server, TimeSpan limit)
    {
        var g = server.Engine.Generator!;
        var deadline = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < deadline)
        {
            if (g.ActiveCount == 0 && g.WaitingCount == 0 && g.Cache.Pool.BlocksInUse == 0) return true;
            await Task.Delay(20);
        }
        return g.ActiveCount == 0 && g.WaitingCount == 0 && g.Cache.Pool.BlocksInUse == 0;
    }

    private static async Task<(HttpResponseMessage Response, StreamReader Reader)> OpenStream(HttpClient http, string body)
    {
        var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(body) }, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (response, new StreamReader(await response.Content.ReadAsStreamAsync()));
    }

    [Fact]
    public async Task OpenAiSdkOverASocket()
    {
        await using var server = await Start(tiny.Pipeline);
        Assert.Equal("127.0.0.1", server.Address!.Host);
        Assert.NotEqual(0, server.Address.Port);
        var client = new ChatClient("m", new ApiKeyCredential("k"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "/v1") });
        var expected = Reference.Generate(tiny.Pipeline, Reference.ChatPrompt(tiny.Pipeline, Msg.User("Hi")), Reference.Greedy(tiny.Pipeline), 6);
        var text = new StringBuilder();
        await foreach (var u in client.CompleteChatStreamingAsync([ChatMessage.CreateUserMessage("Hi")], new ChatCompletionOptions { MaxOutputTokenCount = 6, Temperature = 0 }))
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
        Assert.Equal(expected.Text, text.ToString());
    }

    [Fact]
    public async Task ClientThatDisconnectsMidStreamIsCancelledAndFreed()
    {
        await using var server = await Start(tiny.Pipeline);
        using var http = new HttpClient { BaseAddress = server.Address };
        // A client of its own, which drains nothing when the response is dropped: disposing it closes the socket.
        var dropping = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = server.Address };
        var (response, reader) = await OpenStream(dropping, "{\"prompt\":[1,2,3,4,5],\"max_tokens\":100000,\"temperature\":0,\"stream\":true}");
        Assert.StartsWith("data: ", await reader.ReadLineAsync());
        Assert.True(server.Engine.Generator!.Cache.Pool.BlocksInUse > 0);
        reader.Dispose();
        response.Dispose();
        dropping.Dispose(); // the connection closes mid-stream
        Assert.True(await Freed(server, TimeSpan.FromSeconds(2)), "the request was not cancelled and freed within 2 s of the disconnect");
        // The server goes on serving.
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/completions", Json("{\"prompt\":[1],\"max_tokens\":2}"))).StatusCode);
    }

    [Fact]
    public async Task ConcurrentStreamsEqualTheRequestsAlone()
    {
        await using var server = await Start(tiny.Pipeline, new Qwen2ServerOptions { Batching = new() { CachePrefixes = true, MaxBatchSize = 4 } });
        using var http = new HttpClient { BaseAddress = server.Address };
        var requests = new (int[] Prompt, SamplingOptions Sampling, string Json)[]
        {
            ([1, 2, 3], Reference.Greedy(tiny.Pipeline), "\"temperature\":0"),
            ([500, 600, 700, 800, 900], Reference.Greedy(tiny.Pipeline), "\"temperature\":0"),
            ([1, 2, 3], Reference.Seeded(5), Reference.SeededJson(5)),
            ([42, 43], Reference.Seeded(6), Reference.SeededJson(6)),
        };
        const int max = 20;
        var texts = await Task.WhenAll(requests.Select(async r =>
        {
            var response = await http.PostAsync("/v1/completions", Json($"{{\"prompt\":{JsonSerializer.Serialize(r.Prompt)},\"max_tokens\":{max},\"stream\":true,{r.Json}}}"));
            var events = await Sse.ReadAllAsync(response);
            Assert.Equal("[DONE]", events[^1]);
            return string.Concat(events[..^1].Select(Sse.Parse).Where(c => c.GetProperty("choices").GetArrayLength() == 1).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        }));
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(Reference.Generate(tiny.Pipeline, requests[i].Prompt, requests[i].Sampling, max).Text, texts[i]);
    }

    [Fact]
    public async Task ShutdownLetsAStreamFinish()
    {
        var server = await Start(tiny.Pipeline);
        using var http = new HttpClient { BaseAddress = server.Address };
        int[] prompt = [7, 8, 9];
        var (response, reader) = await OpenStream(http, "{\"prompt\":[7,8,9],\"max_tokens\":24,\"temperature\":0,\"stream\":true}");
        var events = new List<string> { (await reader.ReadLineAsync())! };
        var stopping = server.StopAsync();
        while (await reader.ReadLineAsync() is { } line) if (line.Length > 0) events.Add(line);
        await stopping;
        Assert.Equal("data: [DONE]", events[^1]);
        string text = string.Concat(events[..^1].Select(e => Sse.Parse(e["data: ".Length..])).Where(c => c.GetProperty("choices").GetArrayLength() == 1)
            .Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(Reference.Generate(tiny.Pipeline, prompt, Reference.Greedy(tiny.Pipeline), 24).Text, text);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetAsync("/health"));
        response.Dispose();
        await server.DisposeAsync();
    }

    [Fact]
    public async Task ShutdownTimeoutEndsALongStreamAndFreesIt()
    {
        var server = await Start(tiny.Pipeline, shutdownTimeout: TimeSpan.FromMilliseconds(300));
        using var http = new HttpClient { BaseAddress = server.Address };
        var (response, reader) = await OpenStream(http, "{\"prompt\":[7,8,9],\"max_tokens\":100000,\"temperature\":0,\"stream\":true}");
        Assert.StartsWith("data: ", await reader.ReadLineAsync());
        await server.StopAsync();
        // The stream ends (the connection is closed) rather than running to max_tokens.
        await Assert.ThrowsAnyAsync<Exception>(async () => { while (await reader.ReadLineAsync() is not null) { } throw new EndOfStreamException("ended"); });
        Assert.True(await Freed(server, TimeSpan.FromSeconds(2)));
        response.Dispose();
        await server.DisposeAsync();
    }

    [Fact]
    public async Task HealthIs503WhileTheModelLoads()
    {
        using var release = new ManualResetEventSlim();
        var server = Qwen2Server.Create(() => { release.Wait(TimeSpan.FromSeconds(30)); return tiny.Pipeline; }, new Qwen2ServerOptions(), "127.0.0.1", 0);
        var starting = server.StartAsync();
        while (server.Address is null && !starting.IsCompleted) await Task.Delay(10);
        using var http = new HttpClient { BaseAddress = server.Address };
        var loading = await http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, loading.StatusCode);
        Assert.Equal("loading", Sse.Parse(await loading.Content.ReadAsStringAsync()).GetProperty("status").GetString());
        Assert.NotNull(loading.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/v1/models")).StatusCode);
        release.Set();
        await starting;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        // The server disposes what it loaded; the fixture's pipeline does not own its model, so that leaves it alone.
        await server.DisposeAsync();
    }
}
