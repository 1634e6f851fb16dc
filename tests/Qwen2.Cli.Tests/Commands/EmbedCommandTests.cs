using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen2.Native;
using Qwen2.Native.Embeddings;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary><c>qwen2 embed</c> prints what <see cref="Qwen2EmbeddingGenerator"/> computes (itself held to the float64 reference in the engine's tests).</summary>
public class EmbedCommandTests(TinyQwen3EmbeddingModel tiny) : IClassFixture<TinyQwen3EmbeddingModel>
{
    private sealed record Output(string Model, int Dimensions, int[] Tokens, float[][] Embeddings);

    private static Output Parse(string json) => JsonSerializer.Deserialize<Output>(json, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;

    [Fact]
    public async Task TextsAndAJsonFileGiveTheGeneratorsVectors()
    {
        string[] texts = ["What is the capital of China?", "The capital of China is Beijing."];
        var (code, output, err) = Cli.Run(["embed", "-m", tiny.Directory, "--text", texts[0], "--text", texts[1], "--threads", "2"]);
        Assert.True(code == 0, err);
        var printed = Parse(output);
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var expected = await generator.GenerateAsync(texts);
        Assert.Equal(64, printed.Dimensions);
        Assert.Equal(texts.Select(t => generator.Tokenize(t).Length), printed.Tokens);
        Assert.Equal(expected.Select(e => e.Vector.ToArray()), printed.Embeddings);

        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("in.json"), JsonSerializer.Serialize(texts));
        var fromFile = Cli.Run(["embed", "-m", tiny.Directory, "--json-in", dir.File("in.json"), "--dimensions", "32"]);
        Assert.True(fromFile.Code == 0, fromFile.Err);
        var truncated = await generator.GenerateAsync(texts, new EmbeddingGenerationOptions { Dimensions = 32 });
        Assert.Equal(truncated.Select(e => e.Vector.ToArray()), Parse(fromFile.Out).Embeddings);
    }

    [Fact]
    public async Task InstructAndPromptNameFormatQueries()
    {
        using var generator = new Qwen2EmbeddingGenerator(tiny.Pipeline);
        var instruct = Cli.Run(["embed", "-m", tiny.Directory, "--text", "capital of China", "--instruct", "Given a web search query, retrieve relevant passages that answer the query"]);
        var named = Cli.Run(["embed", "-m", tiny.Directory, "--text", "capital of China", "--prompt-name", "query"]);
        Assert.True(instruct.Code == 0 && named.Code == 0, instruct.Err + named.Err);
        var expected = await generator.GenerateAsync([generator.Prompts["query"] + "capital of China"]);
        Assert.Equal(expected[0].Vector.ToArray(), Parse(instruct.Out).Embeddings[0]);
        Assert.Equal(expected[0].Vector.ToArray(), Parse(named.Out).Embeddings[0]);
    }

    [Theory]
    [InlineData(new[] { "--dimensions", "65", "--text", "x" }, "--dimensions must be from 1 to 64")]
    [InlineData(new[] { "--prompt-name", "passage", "--text", "x" }, "\"passage\" is not one of the model's prompts (query, document)")]
    [InlineData(new[] { "--instruct", "t", "--prompt-name", "query", "--text", "x" }, "not both")]
    [InlineData(new string[0], "give --text TEXT")]
    public void BadArgumentsAreUsageErrors(string[] extra, string message)
    {
        var (code, _, err) = Cli.Run(["embed", "-m", tiny.Directory, .. extra]);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public void ALanguageModelIsEmbeddedWithANote()
    {
        using var lm = new TinyQwen3Model();
        var (code, output, err) = Cli.Run(["embed", "-m", lm.Directory, "--text", "hello"]);
        Assert.True(code == 0, err);
        Assert.Contains("is a language model, not an embedding model", err);
        Assert.Single(Parse(output).Embeddings);
    }
}
