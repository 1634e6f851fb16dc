using System.Text;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Tokenizer;

/// <summary>Our ids and decodes against Hugging Face's own tokenizers, for the Qwen2, Qwen2.5 and Qwen3 files.</summary>
public sealed class TokenizerParityTests
{
    private static void AssertSameIds(string family, string text, int[] ours, int[] hf)
    {
        if (ours.AsSpan().SequenceEqual(hf)) return;
        Assert.Fail($"{family}: ids differ for {Escape(text)}\n  ours: [{string.Join(",", ours)}]\n  HF:   [{string.Join(",", hf)}]");
    }

    private static string Escape(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var r in s.EnumerateRunes()) sb.Append(r.Value is >= 0x20 and < 0x7F ? r.ToString() : $"\\u{{{r.Value:X}}}");
        return sb.Append('"').ToString();
    }

    [Theory]
    [MemberData(nameof(TokenizerFamilies.All), MemberType = typeof(TokenizerFamilies))]
    public void FixedCorpusMatchesHuggingFace(string family)
    {
        var ours = TokenizerFamilies.Tokenizer(family);
        var hf = TokenizerFamilies.Reference(family);
        foreach (var text in TokenizerCorpus.Fixed.Append(TokenizerCorpus.LongParagraph()))
        {
            var ids = ours.Encode(text);
            AssertSameIds(family, text, ids, hf.Encode(text));
            Assert.Equal(hf.DecodeSkippingSpecial(ids), ours.Decode(ids, skipSpecialTokens: true));
        }
    }

    [Theory]
    [MemberData(nameof(TokenizerFamilies.All), MemberType = typeof(TokenizerFamilies))]
    public void RandomStringsMatchHuggingFace(string family)
    {
        var ours = TokenizerFamilies.Tokenizer(family);
        var hf = TokenizerFamilies.Reference(family);
        var texts = TokenizerCorpus.Random(1500);
        int roundTrips = 0;
        foreach (var text in texts)
        {
            var ids = ours.Encode(text);
            AssertSameIds(family, text, ids, hf.Encode(text));
            Assert.Equal(hf.DecodeSkippingSpecial(ids), ours.Decode(ids, skipSpecialTokens: true));
            // Byte-level BPE loses nothing: text that NFC leaves alone comes back exactly, added tokens included.
            if (text.IsNormalized(NormalizationForm.FormC)) { Assert.Equal(text, ours.Decode(ids)); roundTrips++; }
        }
        Assert.True(roundTrips > texts.Count / 2, $"only {roundTrips} of {texts.Count} texts were NFC, too few round trips checked");
    }

    /// <summary>Arbitrary id sequences split characters across tokens: the U+FFFD replacement must match HF's from_utf8_lossy.</summary>
    [Theory]
    [MemberData(nameof(TokenizerFamilies.All), MemberType = typeof(TokenizerFamilies))]
    public void RandomIdSequencesDecodeLikeHuggingFace(string family)
    {
        var ours = TokenizerFamilies.Tokenizer(family);
        var hf = TokenizerFamilies.Reference(family);
        var rng = new Random(7);
        int withReplacement = 0;
        for (int n = 0; n < 1000; n++)
        {
            var ids = new int[rng.Next(1, 12)];
            for (int i = 0; i < ids.Length; i++)
                ids[i] = rng.Next(4) == 0 ? rng.Next(ours.VocabSize - 30, ours.VocabSize) : rng.Next(rng.Next(2) == 0 ? 300 : ours.VocabSize);
            string expected = hf.DecodeSkippingSpecial(ids);
            Assert.Equal(expected, ours.Decode(ids, skipSpecialTokens: true));
            if (expected.Contains('\uFFFD')) withReplacement++;

            var stream = ours.CreateStreamingDecoder(skipSpecialTokens: true);
            var sb = new StringBuilder();
            foreach (int id in ids) sb.Append(stream.Append(id));
            sb.Append(stream.Flush());
            Assert.Equal(expected, sb.ToString());
        }
        Assert.True(withReplacement > 50, $"only {withReplacement} sequences exercised invalid UTF-8");
    }
}

/// <summary>The added-token flags Qwen's files leave false (lstrip, rstrip, single_word, normalized), against HF on a small tokenizer.</summary>
public sealed class AddedTokenFlagParityTests
{
    [Fact]
    public void FlaggedAddedTokensMatchHuggingFace()
    {
        var doc = TinyTokenizerJson.Build(
            TinyTokenizerJson.AddedToken(262, "<L>", special: true, lstrip: true),
            TinyTokenizerJson.AddedToken(263, "<R>", special: false, rstrip: true),
            TinyTokenizerJson.AddedToken(264, "hey", special: false, singleWord: true),
            TinyTokenizerJson.AddedToken(265, "\u03A9", special: false, normalized: true), // NFC maps U+2126 OHM SIGN to it
            TinyTokenizerJson.AddedToken(266, "<LR>", special: true, lstrip: true, rstrip: true),
            TinyTokenizerJson.AddedToken(267, "<L", special: false));
        using var dir = Fixtures.TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), doc.ToJsonString());
        var ours = Qwen2.Native.Text.Qwen2Tokenizer.Load(dir.Path);
        var hf = new Oracle(dir.File("tokenizer.json"));

        string[] alphabet = ["_", "½", "<L>", "<R>", "hey", "heyy", "word", "\u03A9", "\u2126", "A\u030A", "A", "<LR>", "<L", " ", "  ", "\t", "\n", "x", "!", "the", "9", "é"];
        var rng = new Random(5);
        for (int n = 0; n < 1000; n++)
        {
            var sb = new StringBuilder();
            for (int k = rng.Next(1, 9); k > 0; k--) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            string text = sb.ToString();
            var ids = ours.Encode(text);
            Assert.True(ids.AsSpan().SequenceEqual(hf.Encode(text)), $"ids differ for \"{text}\": ours [{string.Join(",", ids)}], HF [{string.Join(",", hf.Encode(text))}]");
            Assert.Equal(hf.DecodeSkippingSpecial(ids), ours.Decode(ids, skipSpecialTokens: true));
        }
    }
}
