using System.Text;
using System.Text.Json.Nodes;
using Qwen2.Native.Tests.Tokenizer;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests.Fuzz;

/// <summary>Focused regressions for what the fuzz targets found, and the budget they run.</summary>
public sealed class FuzzRegressionTests
{
    [Fact]
    public void FuzzBudget_IsAtLeastTenThousandInputs()
    {
        Assert.True(FuzzBudget.FixedTotal >= 10_000, $"{FuzzBudget.FixedTotal} inputs");
    }

    private static CheckpointException TokenizerFails(string json, string? config = null)
    {
        using var j = new MemoryStream(Encoding.UTF8.GetBytes(json));
        using var c = config is null ? null : new MemoryStream(Encoding.UTF8.GetBytes(config));
        return Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.FromStreams(j, c, "fuzz"));
    }

    private static CheckpointException TokenizerFails(byte[] json)
    {
        using var j = new MemoryStream(json);
        return Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.FromStreams(j, null, "fuzz"));
    }

    private static readonly string Json = TinyTokenizerJson.Build(TinyTokenizerJson.AddedToken(262, "<|endoftext|>")).ToJsonString();

    [Theory]
    [InlineData("{\"add_bos_token\": \"\\ud800\"}", "$.add_bos_token")]
    [InlineData("{\"chat_template\": \"x\\udc00\"}", "$.chat_template")]
    [InlineData("{\"eos_token\": {\"content\": \"\\ud800\"}}", "$.eos_token.content")]
    public void LoneSurrogateInTokenizerConfig_NamesThePath(string config, string path)
    {
        // was InvalidOperationException from System.Text.Json
        var e = TokenizerFails(Json, config);
        Assert.Equal(Path.Combine("fuzz", Qwen2Tokenizer.TokenizerConfigFile), e.FilePath);
        Assert.Equal(path, e.Field);
        Assert.Contains("lone surrogate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoneSurrogateInTokenizerJson_NamesThePath()
    {
        string json = TinyTokenizerJson.Build(TinyTokenizerJson.AddedToken(262, "zzqq")).ToJsonString();
        var e = TokenizerFails(json.Replace("\"zzqq\"", "\"zzqq\\ud800\"", StringComparison.Ordinal));
        Assert.Equal(Path.Combine("fuzz", Qwen2Tokenizer.TokenizerJsonFile), e.FilePath);
        Assert.Equal("$.added_tokens[0].content", e.Field);
    }

    [Fact]
    public void CorruptGzip_IsACheckpointError()
    {
        // was InvalidDataException
        byte[] bytes = [0x1F, 0x8B, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56]; // compression method 7: none such
        var e = TokenizerFails(bytes);
        Assert.Equal("gzip", e.Field);
        Assert.Contains("does not decompress", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2147483647)] // was OverflowException: the id tables were sized max id + 1
    [InlineData(1000000)]
    [InlineData(262)]
    public void SparseVocabId_IsRefused(int id)
    {
        var o = JsonNode.Parse(Json)!;
        o["model"]!["vocab"]!["word"] = id;
        var e = TokenizerFails(o.ToJsonString());
        Assert.Equal("model.vocab", e.Field);
        Assert.Contains($"has id {id}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateVocabToken_IsRefused()
    {
        // was ArgumentException from Microsoft.ML.Tokenizers: JSON allows the key twice
        string json = Json.Replace("\"word\":261", "\"word\":261,\"word\":261", StringComparison.Ordinal);
        Assert.NotEqual(Json, json);
        var e = TokenizerFails(json);
        Assert.Equal("model.vocab", e.Field);
        Assert.Contains("'word' is listed twice", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddedTokenIdOfTheWrongType_IsRefused()
    {
        // was InvalidOperationException from JsonElement.TryGetInt32 on a string
        var e = TokenizerFails(Json.Replace("\"id\":262", "\"id\":\"262\"", StringComparison.Ordinal));
        Assert.Equal("added_tokens[0].id", e.Field);
    }
}
