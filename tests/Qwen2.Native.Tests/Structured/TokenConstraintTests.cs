using System.Text;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Native.Structured;

namespace Qwen2.Native.Tests.Structured;

/// <summary>The token-level matcher over the real Qwen2.5 vocabulary, and the generation paths that honour it.</summary>
public class TokenConstraintTests(TinyChatModel fixture) : IClassFixture<TinyChatModel>
{
    private readonly TinyChatModel _m = fixture;

    private TokenConstraint Constraint(ResponseFormat format, params int[] stops) =>
        new(format.Grammar!, TokenVocabulary.For(_m.Tokenizer, _m.Model.Config.VocabSize), stops);

    private int ByteToken(params byte[] bytes)
    {
        for (int id = 0; id < _m.Tokenizer.VocabSize; id++)
            if (!_m.Tokenizer.IsSpecial(id) && _m.Tokenizer.TokenBytesOrEmpty(id).SequenceEqual(bytes)) return id;
        throw new InvalidOperationException("no such token");
    }

    private int Eos => _m.Tokenizer.TokenToId("<|im_end|>")!.Value;

    [Fact]
    public void ACharacterSplitAcrossTokensIsAcceptedOnlyWhole()
    {
        var c = Constraint(ResponseFormat.JsonSchema("""{"type":"string","maxLength":1}"""), Eos);
        int quote = ByteToken((byte)'"'), e4 = ByteToken(0xE4), b8 = ByteToken(0xB8), ad = ByteToken(0xAD); // 中 = E4 B8 AD
        Assert.True(c.TryAdvance(quote));
        Assert.True(c.TryAdvance(e4));
        Assert.False(c.Allows(quote));      // the character is unfinished
        Assert.False(c.Allows(e4));         // a lead byte cannot follow a lead byte
        Assert.True(c.TryAdvance(b8));
        Assert.True(c.TryAdvance(ad));
        Assert.False(c.Allows(ByteToken((byte)'a'))); // maxLength 1: 中 was one character
        Assert.False(c.Allows(Eos));
        Assert.True(c.TryAdvance(quote));
        Assert.True(c.IsComplete);
    }

    [Fact]
    public void SpecialTokensAreNeverJsonAndStopTokensOnlyEndACompleteValue()
    {
        var c = Constraint(ResponseFormat.JsonSchema("""{"type":"integer"}"""), Eos);
        var special = _m.Tokenizer.AddedTokens.Select(a => a.Id).ToArray();
        Assert.All(special, id => Assert.False(c.Allows(id)));
        Assert.True(c.TryAdvance(ByteToken((byte)'4')));
        Assert.True(c.CanEnd);
        Assert.False(c.IsComplete);         // more digits may follow
        Assert.True(c.Allows(Eos));
        Assert.All(special.Where(id => id != Eos), id => Assert.False(c.Allows(id)));
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"}},"required":["name","n"]}""", new[] { "", "{", "{\"", "{\"name\": \"ab", "{\"name\":\"x\\", "{\"name\":\"x\",\"n\":1" })]
    [InlineData("""{"type":"object"}""", new[] { "{\"", "{\"k", "{\"abcdefg", "{\"k\":[", "{\"k\":\"\\u00" })]
    [InlineData("""{"anyOf":[{"type":"string","maxLength":3},{"type":"array","items":{"enum":["xy","z"]}}]}""", new[] { "", "\"ab", "[\"x", "[\"xy\"," })]
    public void TheMaskAllowsExactlyTheTokensTheMatcherAccepts(string schema, string[] prefixes)
    {
        var format = ResponseFormat.JsonSchema(schema, new JsonLimits { MaxKeyLength = 8 });
        int vocab = _m.Model.Config.VocabSize;
        var logits = Enumerable.Range(0, vocab).Select(i => (float)(i % 97)).ToArray();
        var masked = new float[vocab];
        foreach (var prefix in prefixes)
        {
            var c = Constraint(format, Eos);
            foreach (byte b in Encoding.UTF8.GetBytes(prefix)) Assert.True(c.TryAdvance(ByteToken(b)), $"prefix {prefix}");
            c.Mask(logits, masked);
            int allowed = 0;
            for (int id = 0; id < vocab; id++)
            {
                bool accepts = c.Allows(id);
                Assert.True(accepts == !float.IsNegativeInfinity(masked[id]), $"after {prefix}: token {id} ({_m.Tokenizer.IdToToken(id)}) mask {masked[id]}, matcher {accepts}");
                if (accepts) { allowed++; Assert.Equal(logits[id], masked[id]); }
            }
            Assert.True(allowed > 0);
        }
    }

    [Fact]
    public async Task EveryGenerationPathHonoursTheFormatAndEndsWhenTheValueIsComplete()
    {
        var format = ResponseFormat.JsonSchema("""{"type":"object","properties":{"a":{"type":"boolean"},"b":{"enum":["x","y"]}},"required":["a","b"]}""");
        var prompt = _m.Tokenizer.Encode("JSON please:");
        foreach (var temperature in (double[])[0, 1.2])
        {
            var options = new GenerationOptions { ResponseFormat = format, MaxNewTokens = 64, Sampling = new SamplingOptions { Temperature = temperature, Seed = 5, TopK = 40 } };
            var session = new InferenceSession(_m.Model);
            string text = string.Concat(session.GenerateText(_m.Tokenizer, prompt, options));
            Assert.Equal(StopReason.EndOfSequence, session.LastStats!.StopReason);
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            Assert.Contains(doc.RootElement.GetProperty("b").GetString(), new[] { "x", "y" });

            // The batch generator gives the same tokens for the same request, batched with an unconstrained one.
            using var generator = new BatchGenerator(_m.Pipeline);
            var free = generator.Submit(prompt, options with { ResponseFormat = ResponseFormat.Text, MaxNewTokens = 8 });
            var r = generator.Submit(prompt, options);
            generator.RunToCompletion();
            Assert.Equal(StopReason.EndOfSequence, (await r.Completion).StopReason);
            Assert.Equal(session.Tokens.Skip(prompt.Length).ToArray(), r.Generated.ToArray());
        }
        // Without a tokenizer there is no vocabulary to match: said at once, not at the first token.
        var bare = new InferenceSession(_m.Model);
        Assert.Throws<InvalidOperationException>(() => bare.Generate([1, 2], new GenerationOptions { ResponseFormat = ResponseFormat.JsonObject }));
        using var modelOnly = new BatchGenerator(_m.Model);
        Assert.Throws<InvalidOperationException>(() => modelOnly.Submit([1, 2], new GenerationOptions { ResponseFormat = ResponseFormat.JsonObject }));
    }
}
