using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Qwen2.Native.Tests;

namespace Qwen2.Server.Tests;

/// <summary>Bad requests get OpenAI-shaped errors naming what is wrong, and never disturb the requests around them.</summary>
public sealed class ErrorTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private const string User = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";

    public static TheoryData<string, string, string?, string> BadRequests => new()
    {
        // path, body, the param the error names, a phrase of its message
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}", null, "not valid JSON" },
        { "/v1/chat/completions", "", null, "empty" },
        { "/v1/chat/completions", "[1,2]", null, "JSON array" },
        { "/v1/chat/completions", "{}", "messages", "required" },
        { "/v1/chat/completions", "{\"messages\":\"Hi\"}", "messages", "must be an array" },
        { "/v1/chat/completions", "{\"messages\":[]}", "messages", "empty" },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"critic\",\"content\":\"x\"}]}", "messages", "critic" },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\"}]}", "messages", "content is required" },
        { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages", "image_url" },
        { "/v1/chat/completions", $"{{{User},\"temperature\":-1}}", "temperature", ">= 0" },
        { "/v1/chat/completions", $"{{{User},\"temperature\":\"hot\"}}", "temperature", "must be a number" },
        { "/v1/chat/completions", $"{{{User},\"top_p\":0}}", "top_p", "(0, 1]" },
        { "/v1/chat/completions", $"{{{User},\"top_k\":1.5}}", "top_k", "integer" },
        { "/v1/chat/completions", $"{{{User},\"min_p\":2}}", "min_p", "[0, 1]" },
        { "/v1/chat/completions", $"{{{User},\"repetition_penalty\":0}}", "repetition_penalty", "> 0" },
        { "/v1/chat/completions", $"{{{User},\"max_tokens\":0}}", "max_tokens", "between 1" },
        { "/v1/chat/completions", $"{{{User},\"max_completion_tokens\":-3}}", "max_completion_tokens", "between 1" },
        { "/v1/chat/completions", $"{{{User},\"n\":2}}", "n", "n must be 1" },
        { "/v1/chat/completions", $"{{{User},\"stop\":5}}", "stop", "string or an array" },
        { "/v1/chat/completions", $"{{{User},\"stop\":[\"\"]}}", "stop", "empty" },
        { "/v1/chat/completions", $"{{{User},\"frequency_penalty\":0.5}}", "frequency_penalty", "not supported" },
        { "/v1/chat/completions", $"{{{User},\"presence_penalty\":3}}", "presence_penalty", "[-2, 2]" },
        { "/v1/chat/completions", $"{{{User},\"logprobs\":1}}", "logprobs", "boolean" },
        { "/v1/chat/completions", $"{{{User},\"top_logprobs\":2}}", "top_logprobs", "needs logprobs" },
        { "/v1/chat/completions", $"{{{User},\"logprobs\":true,\"top_logprobs\":21}}", "top_logprobs", "between 0 and 20" },
        { "/v1/completions", "{\"prompt\":\"a\",\"logprobs\":true}", "logprobs", "integer" },
        { "/v1/completions", "{\"prompt\":\"a\",\"logprobs\":-1}", "logprobs", "between 0 and 20" },
        { "/v1/chat/completions", $"{{{User},\"stream\":\"yes\"}}", "stream", "boolean" },
        { "/v1/chat/completions", $"{{{User},\"stream_options\":[]}}", "stream_options", "object" },
        { "/v1/completions", "{}", "prompt", "required" },
        { "/v1/completions", "{\"prompt\":\"\"}", "prompt", "empty" },
        { "/v1/completions", "{\"prompt\":[1,\"a\"]}", "prompt", "prompt[1]" },
        { "/v1/completions", "{\"prompt\":[1,999999]}", "prompt", "not a token id" },
        { "/v1/completions", "{\"prompt\":[\"a\",\"b\"]}", "prompt", "several prompts" },
        { "/v1/completions", "{\"prompt\":{}}", "prompt", "string or an array" },
        { "/tokenize", "{}", "content", "required" },
        { "/detokenize", "{\"tokens\":\"1\"}", "tokens", "array" },
        { "/detokenize", "{\"tokens\":[-1]}", "tokens", "not a token id" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadRequestIs400NamingTheField(string path, string body, string? param, string phrase)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var response = await host.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var error = await Error(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(400, error.GetProperty("code").GetInt32());
        Assert.Contains(phrase, error.GetProperty("message").GetString());
        if (param is null) Assert.False(error.TryGetProperty("param", out _));
        else Assert.Equal(param, error.GetProperty("param").GetString());
        // The server goes on serving.
        var ok = await host.Http.PostAsync("/v1/completions", new StringContent("{\"prompt\":[1,2],\"max_tokens\":2}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task OversizedBodyIs400()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { MaxRequestBodyBytes = 1000 });
        string body = $"{{\"prompt\":\"{new string('a', 2000)}\"}}";
        var error = await Error(await host.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Contains("too large", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task PromptPastTheContextSaysHowManyTokens()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { Batching = new() { CachePrefixes = true, Cache = new() { MaxTokensPerSequence = 16 } } });
        int[] prompt = Enumerable.Range(100, 20).ToArray();
        var error = await Error(await host.Http.PostAsync("/v1/completions", new StringContent($"{{\"prompt\":{JsonSerializer.Serialize(prompt)}}}", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        Assert.Equal("exceed_context_size_error", error.GetProperty("type").GetString());
        Assert.Contains("20 tokens", error.GetProperty("message").GetString());
        Assert.Contains("16 tokens", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task ApiKeyGuardsEveryPathButHealth()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { ApiKey = "s3cret" });
        Assert.Equal(HttpStatusCode.OK, (await host.Http.GetAsync("/health")).StatusCode);
        foreach (var (method, path) in new[] { ("GET", "/v1/models"), ("GET", "/metrics"), ("GET", "/nowhere"), ("POST", "/v1/chat/completions"), ("POST", "/tokenize") })
        {
            foreach (string? key in new[] { null, "wrong", "s3cre", "s3cret!" })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                var error = await Error(await host.Http.SendAsync(request), HttpStatusCode.Unauthorized);
                Assert.Equal("authentication_error", error.GetProperty("type").GetString());
            }
        }
        using var good = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        good.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await host.Http.SendAsync(good)).StatusCode);
        // The OpenAI SDK sends the key the same way.
        var reply = await host.Chat("s3cret").CompleteChatAsync([OpenAI.Chat.ChatMessage.CreateUserMessage("Hi")], new OpenAI.Chat.ChatCompletionOptions { MaxOutputTokenCount = 2 });
        Assert.Equal(2, reply.Value.Usage.OutputTokenCount);
        var refused = await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() => host.Chat("nope").CompleteChatAsync([OpenAI.Chat.ChatMessage.CreateUserMessage("Hi")]));
        Assert.Equal(401, refused.Status);
    }

    [Fact]
    public async Task FullQueueIs503WithRetryAfter()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { MaxQueuedRequests = 0, RetryAfterSeconds = 3, Batching = new() { CachePrefixes = true, MaxBatchSize = 1 } });
        using var cts = new CancellationTokenSource();
        // One long stream takes the only place; the next request finds batch and queue full.
        var first = await host.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent("{\"prompt\":[1,2,3],\"max_tokens\":100000,\"stream\":true}", Encoding.UTF8, "application/json"),
        }, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var busy = await host.Http.PostAsync("/v1/completions", new StringContent("{\"prompt\":[1,2],\"max_tokens\":2}", Encoding.UTF8, "application/json"));
        var error = await Error(busy, HttpStatusCode.ServiceUnavailable);
        Assert.Equal("3", busy.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("busy", error.GetProperty("message").GetString());
        cts.Cancel();
        first.Dispose();
    }

    private static async Task<JsonElement> Error(HttpResponseMessage response, HttpStatusCode status)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(body).RootElement.GetProperty("error");
    }
}
