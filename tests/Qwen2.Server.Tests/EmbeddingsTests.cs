using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI.Embeddings;
using Qwen2.Native.Embeddings;
using Qwen2.Native.Tests;

namespace Qwen2.Server.Tests;

/// <summary>
/// <c>POST /v1/embeddings</c> on a Qwen3-Embedding checkpoint: what the official OpenAI SDK (base64 on the wire) and
/// Microsoft.Extensions.AI's OpenAI embedding generator read equals <see cref="Qwen2EmbeddingGenerator"/>'s vectors,
/// which the engine's tests hold to the float64 reference.
/// </summary>
public sealed class EmbeddingsTests(TinyQwen3EmbeddingModel tiny) : IClassFixture<TinyQwen3EmbeddingModel>
{
    private static readonly string[] Texts = ["What is the capital of China?", "The capital of China is Beijing.", "Gravity is a force."];

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private async Task<float[][]> Expected(string[] texts, int? dimensions = null)
    {
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var result = await generator.GenerateAsync(texts, new Microsoft.Extensions.AI.EmbeddingGenerationOptions { Dimensions = dimensions });
        return result.Select(e => e.Vector.ToArray()).ToArray();
    }

    [Fact]
    public async Task TheOpenAiSdkReadsTheGeneratorsVectors()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline, new Qwen2ServerOptions { Alias = "tiny-embed" });
        var client = new EmbeddingClient("tiny-embed", new ApiKeyCredential("k"), host.Options());
        var result = (await client.GenerateEmbeddingsAsync(Texts)).Value; // the SDK asks for base64 and decodes it
        var expected = await Expected(Texts);
        Assert.Equal(Texts.Length, result.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(i, result[i].Index);
            Assert.Equal(expected[i], result[i].ToFloats().ToArray());
        }
        Assert.Equal("tiny-embed", result.Model);
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        Assert.Equal(Texts.Sum(t => generator.Tokenize(t).Length), result.Usage.InputTokenCount);

        var truncated = (await client.GenerateEmbeddingAsync(Texts[0], new OpenAI.Embeddings.EmbeddingGenerationOptions { Dimensions = 32 })).Value;
        Assert.Equal((await Expected([Texts[0]], 32))[0], truncated.ToFloats().ToArray());
    }

    [Fact]
    public async Task MicrosoftExtensionsAiOverOpenAiReadsTheSameVectors()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        IEmbeddingGenerator<string, Embedding<float>> generator = new EmbeddingClient("any", new ApiKeyCredential("k"), host.Options()).AsIEmbeddingGenerator();
        var result = await generator.GenerateAsync(Texts);
        Assert.Equal(await Expected(Texts), result.Select(e => e.Vector.ToArray()));
    }

    [Fact]
    public async Task FloatFormatStringsAndTokenIdsAreAccepted()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var ids = generator.Tokenize(Texts[1]);
        var expected = await Expected([Texts[0], Texts[1]]);
        async Task<float[][]> Post(string input)
        {
            var r = await host.Http.PostAsync("/v1/embeddings", Json($"{{\"input\":{input},\"encoding_format\":\"float\"}}"));
            string body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, body);
            var root = JsonDocument.Parse(body).RootElement;
            Assert.Equal("list", root.GetProperty("object").GetString());
            return root.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray();
        }
        Assert.Equal(expected[0], (await Post(JsonSerializer.Serialize(Texts[0])))[0]);
        Assert.Equal(expected, await Post($"[{JsonSerializer.Serialize(Texts[0])}, [{string.Join(",", ids)}]]"));
        Assert.Equal(expected[1], (await Post($"[{string.Join(",", ids)}]"))[0]);
    }

    [Theory]
    [InlineData("{}", "input is required", "invalid_request_error")]
    [InlineData("{\"input\":[]}", "input is an empty array", "invalid_request_error")]
    [InlineData("{\"input\":42}", "input must be a string", "invalid_request_error")]
    [InlineData("{\"input\":[\"a\", 7]}", "input[1] must be a string or an array of token ids", "invalid_request_error")]
    [InlineData("{\"input\":[[1, 999999999]]}", "is not a token id of this model", "invalid_request_error")]
    [InlineData("{\"input\":\"a\",\"encoding_format\":\"int8\"}", "encoding_format must be \\\"float\\\" or \\\"base64\\\"", "invalid_request_error")]
    [InlineData("{\"input\":\"a\",\"dimensions\":65}", "dimensions must be between 1 and 64", "invalid_request_error")]
    [InlineData("{\"input\":[[]]}", "input[0] has no tokens", "invalid_request_error")]
    public async Task BadRequestsAre400sNamingTheField(string body, string message, string type)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var r = await host.Http.PostAsync("/v1/embeddings", Json(body));
        string text = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains(message, text);
        Assert.Equal(type, JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task AnInputLongerThanTheModelTakesIsAnExceedContextError()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        int max = tiny.Model.Config.MaxPositionEmbeddings;
        var r = await host.Http.PostAsync("/v1/embeddings", Json($"{{\"input\":[[{string.Join(",", Enumerable.Repeat(1, max + 1))}]]}}"));
        string text = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("exceed_context_size_error", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains($"{max + 1} tokens", text);
    }

    [Fact]
    public async Task AnEmbeddingModelRefusesCompletionsAndStillReportsHealthy()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        Assert.Null(host.Engine.Generator); // no KV pool for a model that generates nothing
        Assert.Equal(HttpStatusCode.OK, (await host.Http.GetAsync("/health")).StatusCode);
        foreach (var (path, body) in new[] { ("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"), ("/v1/completions", "{\"prompt\":\"hi\"}") })
        {
            var r = await host.Http.PostAsync(path, Json(body));
            string text = await r.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("is an embedding model", text);
        }
    }
}
