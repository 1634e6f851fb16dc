using System.Net;
using System.Text;
using System.Text.Json;
using Qwen2.Native.Tests;
using Msg = Qwen2.Native.Text.ChatMessage;

namespace Qwen2.Server.Tests;

/// <summary>The wire format itself: SSE chunks as OpenAI sends them, text completions, tokenize, health, metrics.</summary>
public sealed class ProtocolTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> ReadJson(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ChatStreamIsOpenAisChunkSequence(bool includeUsage)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var expected = Reference.Generate(tiny.Pipeline, Reference.ChatPrompt(tiny.Pipeline, Msg.User("Hi")), Reference.Greedy(tiny.Pipeline), 7);
        var response = await host.Http.PostAsync("/v1/chat/completions", Json(
            $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"Hi\"}}],\"max_tokens\":7,\"temperature\":0,\"stream\":true,\"stream_options\":{{\"include_usage\":{(includeUsage ? "true" : "false")}}}}}"));
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await Sse.ReadAllAsync(response);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(Sse.Parse).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        var withChoices = chunks.Where(c => c.GetProperty("choices").GetArrayLength() == 1).Select(c => c.GetProperty("choices")[0]).ToList();
        Assert.Equal("assistant", withChoices[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.All(withChoices.Skip(1), c => Assert.False(c.GetProperty("delta").TryGetProperty("role", out _)));
        // finish_reason: null on every chunk but the last with a choice.
        Assert.All(withChoices[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("finish_reason").ValueKind));
        Assert.Equal(expected.FinishReason, withChoices[^1].GetProperty("finish_reason").GetString());
        string text = string.Concat(withChoices.Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal(expected.Text, text);
        if (includeUsage)
        {
            var last = chunks[^1];
            Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
            Assert.Equal(expected.Ids.Length, last.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            Assert.Equal(chunks.Count - 1, withChoices.Count);
        }
        else
        {
            Assert.Equal(chunks.Count, withChoices.Count);
            Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _)));
        }
    }

    [Fact]
    public async Task TextCompletionTakesAStringOrTokenIds()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        const string prompt = "Once upon a time";
        int[] ids = tiny.Tokenizer.Encode(prompt);
        var expected = Reference.Generate(tiny.Pipeline, ids, Reference.Greedy(tiny.Pipeline), 8);
        foreach (string p in new[] { "\"Once upon a time\"", JsonSerializer.Serialize(ids), $"[{JsonSerializer.Serialize(ids)}]" })
        {
            var r = await ReadJson(await host.Http.PostAsync("/v1/completions", Json($"{{\"prompt\":{p},\"max_tokens\":8,\"temperature\":0}}")));
            Assert.Equal("text_completion", r.GetProperty("object").GetString());
            Assert.Equal(expected.Text, r.GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.Equal(expected.FinishReason, r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
            Assert.Equal(ids.Length, r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
            Assert.Equal(expected.Ids.Length, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
    }

    [Fact]
    public async Task TextCompletionStreams()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        int[] ids = [9707, 11, 1879];
        var expected = Reference.Generate(tiny.Pipeline, ids, Reference.Seeded(3), 9);
        var response = await host.Http.PostAsync("/v1/completions", Json($"{{\"prompt\":[9707,11,1879],\"max_tokens\":9,\"stream\":true,\"stream_options\":{{\"include_usage\":true}},{Reference.SeededJson(3)}}}"));
        var events = await Sse.ReadAllAsync(response);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(Sse.Parse).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        var choices = chunks.Where(c => c.GetProperty("choices").GetArrayLength() == 1).Select(c => c.GetProperty("choices")[0]).ToList();
        Assert.Equal(expected.Text, string.Concat(choices.Select(c => c.GetProperty("text").GetString())));
        Assert.Equal(expected.FinishReason, choices[^1].GetProperty("finish_reason").GetString());
        Assert.Equal(expected.Ids.Length, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task MaxTokensPastTheContextEndsWithLength()
    {
        int[] prompt = [9707, 11, 1879, 0, 1, 2];
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { Batching = new() { CachePrefixes = true, Cache = new() { MaxTokensPerSequence = 10 } } });
        var r = await ReadJson(await host.Http.PostAsync("/v1/completions", Json($"{{\"prompt\":{JsonSerializer.Serialize(prompt)},\"max_tokens\":50,\"temperature\":0}}")));
        var expected = Reference.Generate(tiny.Pipeline, prompt, Reference.Greedy(tiny.Pipeline), 10 - prompt.Length);
        Assert.Equal(expected.Text, r.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(expected.FinishReason, r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task TokenizeAndDetokenizeUseTheModelsTokenizer()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        const string text = "Hello, world! <|im_end|> café";
        var tokens = await ReadJson(await host.Http.PostAsync("/tokenize", Json(JsonSerializer.Serialize(new Dictionary<string, string> { ["content"] = text }))));
        int[] ids = tokens.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(tiny.Tokenizer.Encode(text), ids);
        var response = await host.Http.PostAsync("/detokenize", Json($"{{\"tokens\":{JsonSerializer.Serialize(ids)}}}"));
        string raw = await response.Content.ReadAsStringAsync();
        var back = await ReadJson(response);
        Assert.Equal(text, back.GetProperty("content").GetString());
        // Text is sent as UTF-8, as OpenAI sends it: no \uXXXX for the accent or the angle brackets.
        Assert.Contains("<|im_end|> café", raw);
    }

    [Fact]
    public async Task HealthAndUnknownPaths()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        Assert.Equal("ok", (await ReadJson(await host.Http.GetAsync("/health"))).GetProperty("status").GetString());
        var missing = await ReadJson(await host.Http.GetAsync("/v1/nothing-here"), HttpStatusCode.NotFound);
        Assert.Equal(404, missing.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("/v1/nothing-here", missing.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task MetricsCountTokensInPrometheusText()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var r = await ReadJson(await host.Http.PostAsync("/v1/completions", Json("{\"prompt\":[1,2,3,4],\"max_tokens\":5,\"temperature\":0}")));
        int generated = r.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        var metrics = await host.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        string text = await metrics.Content.ReadAsStringAsync();
        foreach (var name in new[] { "qwen2_requests_processing", "qwen2_requests_waiting", "qwen2_kv_blocks_in_use", "qwen2_prompt_tokens_cached_total",
                     "qwen2_time_to_first_token_seconds_bucket", "qwen2_time_per_output_token_seconds_bucket" })
            Assert.Contains(name, text);
        // Other servers in this process share the meter's name, so the counters are at least this request's.
        Assert.True(Counter(text, "qwen2_prompt_tokens_total") >= 4, text);
        Assert.True(Counter(text, "qwen2_generation_tokens_total") >= generated, text);
    }

    [Fact]
    public async Task RequestTimeoutEndsAGeneration()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) });
        var whole = await host.Http.PostAsync("/v1/completions", Json("{\"prompt\":[1,2,3],\"max_tokens\":1000000,\"ignore_eos\":true}"));
        var error = (await ReadJson(whole, HttpStatusCode.ServiceUnavailable)).GetProperty("error");
        Assert.Equal("timeout_error", error.GetProperty("type").GetString());

        var stream = await host.Http.PostAsync("/v1/completions", Json("{\"prompt\":[1,2,3],\"max_tokens\":1000000,\"ignore_eos\":true,\"stream\":true}"));
        var events = await Sse.ReadAllAsync(stream);
        // Headers were sent: the stream ends with an error event instead of [DONE].
        Assert.Equal("timeout_error", Sse.Parse(events[^1]).GetProperty("error").GetProperty("type").GetString());
        // The generator drops the ended request at its next step.
        var g = host.Engine.Generator!;
        for (int i = 0; i < 100 && g.ActiveCount + g.WaitingCount > 0; i++) await Task.Delay(20);
        Assert.Equal(0, g.ActiveCount + g.WaitingCount);
    }

    [Fact]
    public async Task CorsOriginAnswersPreflightWithoutTheKey()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { CorsOrigin = "http://app.example", ApiKey = "k" });
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions");
        preflight.Headers.Add("Origin", "http://app.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        var response = await host.Http.SendAsync(preflight);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}");
        Assert.Equal("http://app.example", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        using var other = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions");
        other.Headers.Add("Origin", "http://elsewhere.example");
        other.Headers.Add("Access-Control-Request-Method", "POST");
        Assert.False((await host.Http.SendAsync(other)).Headers.Contains("Access-Control-Allow-Origin"));
    }

    private static double Counter(string prometheus, string name) => prometheus.Split('\n')
        .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal))
        .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
}
