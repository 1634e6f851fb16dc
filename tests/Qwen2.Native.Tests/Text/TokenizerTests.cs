using System.Text;
using System.Text.Json.Nodes;
using Qwen2.Native.Tests.Tokenizer;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

public sealed class TokenizerTests
{
    private static Qwen2.Native.Text.Qwen2Tokenizer Family(string name) => TokenizerFamilies.Tokenizer(name);

    private static MemoryStream Utf8(string s) => new(Encoding.UTF8.GetBytes(s));

    private static Qwen2Tokenizer FromJson(JsonNode tokenizer, string? config = null) =>
        Qwen2Tokenizer.FromStreams(Utf8(tokenizer.ToJsonString()), config is null ? null : Utf8(config), "tiny");

    [Theory]
    [InlineData("qwen2", 151646, 3, false)]
    [InlineData("qwen2.5", 151665, 22, false)]
    [InlineData("qwen3", 151669, 26, true)]
    public void FamiliesHaveTheirAddedTokens(string family, int vocabSize, int added, bool hasThink)
    {
        var tok = Family(family);
        Assert.Equal(vocabSize, tok.VocabSize);
        Assert.Equal(added, tok.AddedTokens.Count);
        Assert.Equal(151643, tok.TokenToId("<|endoftext|>"));
        Assert.Equal(151645, tok.TokenToId("<|im_end|>"));
        Assert.True(tok.IsSpecial(151644));
        Assert.Equal(hasThink ? 151667 : null, tok.TokenToId("<think>"));
        Assert.Equal(hasThink ? [151667] : new[] { 13708, 766, 29 }, tok.Encode("<think>"));
        Assert.Equal("Hello", tok.IdToToken(9707));
        Assert.Equal("Ġworld", tok.IdToToken(1879));
        Assert.Equal(1879, tok.TokenToId("Ġworld"));
        Assert.Null(tok.IdToToken(-1));
        Assert.Null(tok.IdToToken(vocabSize));
        Assert.False(tok.IsSpecial(9707));
        Assert.False(tok.IsSpecial(vocabSize));
    }

    [Fact]
    public void Qwen25FlagsOnlyTheFirstFourteenAddedTokensSpecial()
    {
        var tok = Family("qwen2.5");
        Assert.All(tok.AddedTokens, t => Assert.Equal(t.Id <= 151656, t.Special));
        Assert.Equal(151657, tok.TokenToId("<tool_call>"));
        Assert.False(tok.IsSpecial(151657));

        var ids = tok.Encode("<|im_start|>assistant\n<tool_call>{}</tool_call><|im_end|>");
        Assert.Equal(151644, ids[0]);
        Assert.Equal(151645, ids[^1]);
        Assert.Equal("<|im_start|>assistant\n<tool_call>{}</tool_call><|im_end|>", tok.Decode(ids));
        Assert.Equal("assistant\n<tool_call>{}</tool_call>", tok.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void SettingsComeFromTokenizerConfig()
    {
        var s25 = Family("qwen2.5").Settings;
        Assert.Equal("<|im_end|>", s25.EosToken);
        Assert.Equal("<|endoftext|>", s25.PadToken);
        Assert.Null(s25.BosToken);
        Assert.False(s25.AddBosToken);
        Assert.False(s25.CleanUpTokenizationSpaces);
        Assert.Equal(131072, s25.ModelMaxLength);
        Assert.Equal("Qwen2Tokenizer", s25.TokenizerClass);
        Assert.Contains("You are Qwen, created by Alibaba Cloud.", s25.ChatTemplate);

        var s3 = Family("qwen3").Settings;
        Assert.DoesNotContain("You are", s3.ChatTemplate);
        Assert.Contains("<|im_start|>", s3.ChatTemplate);
        Assert.Contains("You are a helpful assistant.", Family("qwen2").Settings.ChatTemplate);
        Assert.Equal(32768, Family("qwen2").Settings.ModelMaxLength);
    }

    [Fact]
    public void SettingsAcceptTokenObjectsAndTemplateLists()
    {
        var tok = FromJson(TinyTokenizerJson.Build(), """
            {"eos_token": {"content": "</s>", "lstrip": false}, "bos_token": "<s>", "pad_token": null, "add_bos_token": true,
             "model_max_length": 1e30,
             "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}
            """);
        Assert.Equal("</s>", tok.Settings.EosToken);
        Assert.Equal("<s>", tok.Settings.BosToken);
        Assert.Null(tok.Settings.PadToken);
        Assert.True(tok.Settings.AddBosToken);
        Assert.Null(tok.Settings.ModelMaxLength);
        Assert.Equal("D", tok.Settings.ChatTemplate);
        Assert.Equal("T", tok.Settings.ChatTemplates["tool_use"]);

        var none = FromJson(TinyTokenizerJson.Build());
        Assert.Null(none.Settings.ChatTemplate);
        Assert.Null(none.Settings.EosToken);
    }

    [Fact]
    public void AddedTokensAreFoundBeforeNormalization()
    {
        // NFC would turn '>' + U+0338 into U+226F and destroy <|im_end|> if it ran first.
        var tok = Family("qwen2.5");
        var ids = tok.Encode("<|im_end|>\u0338");
        Assert.Equal(151645, ids[0]);
        Assert.Equal("<|im_end|>\u0338", tok.Decode(ids));
        Assert.Equal("a\u226Fb", tok.Decode(tok.Encode("a>\u0338b")));
        Assert.Equal(tok.Encode("caf\u00E9"), tok.Encode("cafe\u0301"));
    }

    [Fact]
    public void PreTokenizerClassifiesAstralCodePointsWhole()
    {
        static string[] Pieces(string s) => Qwen2PreTokenizer.Split(s).Select(p => s.Substring(p.Offset, p.Length)).ToArray();
        Assert.Equal(["x𝐇y", " ", "𝟏", "𝟐", " 𠮷野家"], Pieces("x𝐇y 𝟏𝟐 𠮷野家"));
        Assert.Equal(["Hello", " world", "  ", " x", "\n\n", " ", " y", "'S", "'ll", "go"], Pieces("Hello world   x\n\n  y'S'llgo"));
        Assert.Equal(["  ", "\té", "!!!\n", " ?", "1", "2"], Pieces("  \té!!!\n ?12"));
        Assert.Empty(Pieces(""));
    }

    [Fact]
    public void LoneSurrogatesEncodeAsReplacementCharacter()
    {
        var tok = Family("qwen2.5");
        Assert.Equal(tok.Encode("a\uFFFDb"), tok.Encode("a\uD800b"));
        Assert.Equal(tok.Encode("\uFFFD"), tok.Encode("\uDC00"));
        Assert.Equal(tok.Encode("𝐇"), tok.Encode("\uD835\uDC07"));
    }

    [Fact]
    public void DecodeRejectsIdsOutsideTheVocabulary()
    {
        var tok = Family("qwen2");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([9707, 151646]));
        Assert.Contains("151646", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([-3], skipSpecialTokens: true));
        Assert.Contains("-3", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.CreateStreamingDecoder().Append(int.MaxValue));
        Assert.Equal("", tok.Decode([]));
    }

    [Fact]
    public void StreamingDecoderHoldsBackIncompleteCharacters()
    {
        var tok = Family("qwen2.5");
        const string text = "Hi 👩🏽‍💻 and 𠮷!";
        var ids = tok.Encode(text);
        var stream = tok.CreateStreamingDecoder();
        var pieces = ids.Select(stream.Append).ToList();
        pieces.Add(stream.Flush());
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.Contains("", pieces.Take(ids.Length)); // some id ended mid-character and produced nothing yet
        Assert.Contains(pieces, p => p.Contains("👩") || p.Contains("💻"));
    }

    [Fact]
    public void StreamingFlushReplacesAnUnfinishedCharacterLikeHuggingFace()
    {
        var tok = Family("qwen2.5");
        int zwjPrefix = tok.TokenToId("âĢ")!.Value; // bytes E2 80: the start of U+200D ZERO WIDTH JOINER
        var stream = tok.CreateStreamingDecoder();
        Assert.Equal("ok", stream.Append(tok.TokenToId("ok")!.Value));
        Assert.Equal("", stream.Append(zwjPrefix));
        Assert.Equal("\uFFFD", stream.Flush());
        Assert.Equal("", stream.Flush());
        Assert.Equal("ok\uFFFD", tok.Decode([tok.TokenToId("ok")!.Value, zwjPrefix]));
        Assert.Equal(TokenizerFamilies.Reference("qwen2.5").DecodeSkippingSpecial([zwjPrefix]), tok.Decode([zwjPrefix]));
    }

    [Fact]
    public void StreamingSkipsOnlySpecialTokens()
    {
        var tok = Family("qwen2.5");
        var ids = tok.Encode("<|im_start|>a<tool_call>b<|im_end|>");
        var stream = tok.CreateStreamingDecoder(skipSpecialTokens: true);
        Assert.Equal("a<tool_call>b", string.Concat(ids.Select(stream.Append)) + stream.Flush());
    }

    [Fact]
    public void NormalizationUnavailableIsAClearErrorNotWrongIds()
    {
        Assert.True(NfcNormalizer.RuntimeSupportsNfc, "the test process runs with ICU, so NFC must work here");
        using var json = Utf8(TinyTokenizerJson.Build().ToJsonString());
        var tok = Qwen2Tokenizer.Create(json, null, "tiny/tokenizer.json", "tiny/tokenizer_config.json", new NfcNormalizer(available: false));
        Assert.Equal(FromJson(TinyTokenizerJson.Build()).Encode("the text"), tok.Encode("the text")); // ASCII needs no tables
        var e = Assert.Throws<InvalidOperationException>(() => tok.Encode("caf\u00E9"));
        Assert.Contains("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", e.Message);
        Assert.Equal("é", tok.Decode(FromJson(TinyTokenizerJson.Build()).Encode("é"))); // decoding needs no normalization
    }

    [Fact]
    public void MissingFilesNameThePath()
    {
        using var dir = Fixtures.TempDir();
        var e = Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Equal(Path.Combine(dir.Path, "tokenizer.json"), e.FilePath);

        e = Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.Load(dir.File("nope")));
        Assert.Contains("not found", e.Message);

        e = Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.FromFiles(dir.File("x.json"), null));
        Assert.Equal(dir.File("x.json"), e.FilePath);
    }

    [Fact]
    public void LoadReadsPlainJsonAndConfigFromADirectory()
    {
        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), TinyTokenizerJson.Build(TinyTokenizerJson.AddedToken(262, "<x>")).ToJsonString());
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"eos_token": "<x>"}""");
        var tok = Qwen2Tokenizer.Load(dir.Path);
        Assert.Equal("<x>", tok.Settings.EosToken);
        Assert.Equal(263, tok.VocabSize);
        Assert.Equal([258, 262, 261], tok.Encode(" the<x>word"));
    }

    [Fact]
    public void MalformedJsonNamesTheFile()
    {
        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), "{\"model\": [1, 2,");
        var e = Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.Load(dir.Path));
        Assert.Equal(dir.File("tokenizer.json"), e.FilePath);
        Assert.Contains("not valid JSON", e.Message);

        File.WriteAllText(dir.File("tokenizer.json"), TinyTokenizerJson.Build().ToJsonString());
        File.WriteAllText(dir.File("tokenizer_config.json"), "{\"eos_token\": 5}");
        e = Assert.Throws<CheckpointException>(() => Qwen2Tokenizer.Load(dir.Path));
        Assert.Equal(dir.File("tokenizer_config.json"), e.FilePath);
        Assert.Equal("eos_token", e.Field);
    }

    [Theory]
    [InlineData("merge-no-space", "model.merges[2]")]
    [InlineData("merge-three-parts", "model.merges[2]")]
    [InlineData("merge-pair-of-one", "model.merges[2]")]
    [InlineData("merge-number", "model.merges[2]")]
    [InlineData("merge-unknown-token", "model.merges[2]")]
    [InlineData("vocab-negative-id", "model.vocab")]
    [InlineData("no-vocab", "model.vocab")]
    [InlineData("other-pattern", "pre_tokenizer")]
    [InlineData("nfkc", "normalizer")]
    [InlineData("byte-fallback", "model.byte_fallback")]
    [InlineData("added-no-id", "added_tokens[0].id")]
    [InlineData("added-bad-flag", "added_tokens[0].special")]
    [InlineData("added-is-vocab-token", "added_tokens[0].id")]
    [InlineData("added-id-gap", "added_tokens[1].id")]
    public void BadTokenizerJsonNamesTheField(string fault, string field)
    {
        var doc = TinyTokenizerJson.Build(TinyTokenizerJson.AddedToken(262, "<x>"), TinyTokenizerJson.AddedToken(263, "<y>"));
        var model = doc["model"]!.AsObject();
        var merges = model["merges"]!.AsArray();
        switch (fault)
        {
            case "merge-no-space": merges[2] = "Ġthe"; break;
            case "merge-three-parts": merges[2] = "Ġ t he"; break;
            case "merge-pair-of-one": merges[2] = new JsonArray("Ġt"); break;
            case "merge-number": merges[2] = 7; break;
            case "merge-unknown-token": merges[2] = "Ġt zz"; break;
            case "vocab-negative-id": model["vocab"]!["Ġt"] = -1; break;
            case "no-vocab": model.Remove("vocab"); break;
            case "other-pattern": doc["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = @"\s+|\S+"; break;
            case "nfkc": doc["normalizer"] = new JsonObject { ["type"] = "NFKC" }; break;
            case "byte-fallback": model["byte_fallback"] = true; break;
            case "added-no-id": doc["added_tokens"]![0]!.AsObject().Remove("id"); break;
            case "added-bad-flag": doc["added_tokens"]![0]!["special"] = "yes"; break;
            case "added-is-vocab-token": doc["added_tokens"]![0]!["content"] = "Ġt"; break; // HF gives it vocab id 256, not 262
            case "added-id-gap": doc["added_tokens"]![1]!["id"] = 300; break; // HF gives it 263
        }
        var e = Assert.Throws<CheckpointException>(() => FromJson(doc));
        Assert.Equal(field, e.Field);
        Assert.Equal(Path.Combine("tiny", "tokenizer.json"), e.FilePath);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void MergesAsPairsEqualMergesAsStrings()
    {
        var strings = TinyTokenizerJson.Build();
        var pairs = TinyTokenizerJson.Build();
        var merges = pairs["model"]!["merges"]!.AsArray();
        for (int i = 0; i < merges.Count; i++)
        {
            var parts = merges[i]!.GetValue<string>().Split(' ');
            merges[i] = new JsonArray(parts[0], parts[1]);
        }
        Assert.Equal([258, 261], FromJson(strings).Encode(" theword"));
        Assert.Equal([258, 261], FromJson(pairs).Encode(" theword"));
    }

    [Fact]
    public void ByteLevelDecodeKeepsAnAddedTokenWithCharactersOutsideTheByteAlphabetAsText()
    {
        // HF's ByteLevel decoder maps a token through the byte alphabet only when every character is in it.
        var tok = FromJson(TinyTokenizerJson.Build(TinyTokenizerJson.AddedToken(262, "a b", special: false), TinyTokenizerJson.AddedToken(263, "<Ġ>", special: false)));
        Assert.Equal("a b", tok.Decode([262]));
        Assert.Equal("< >", tok.Decode([263]));
    }
}
