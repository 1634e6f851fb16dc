using Qwen2.Kernels;
using Qwen2.Native.Gguf;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests.Tokenizer;

/// <summary>
/// The tokenizer built from a GGUF file's metadata (what <c>export-gguf</c> writes, as llama.cpp's converter does)
/// gives Hugging Face's ids on the tokenizer corpus.
/// </summary>
public sealed class GgufTokenizerTests
{
    private static readonly Lazy<string> Exported = new(() =>
    {
        string root = Path.Combine(AppContext.BaseDirectory, "gguf-tokenizer", Guid.NewGuid().ToString("N"));
        string checkpoint = Path.Combine(root, "ckpt");
        SyntheticCheckpoint.Write(checkpoint, SyntheticShape.Tiny, WeightType.BF16, seed: 9);
        TinyChatModel.CopyTokenizer(checkpoint);
        string gguf = Path.Combine(root, "tiny.gguf");
        GgufExporter.Export(checkpoint, gguf, GgufFileType.F16);
        return gguf;
    });

    private static readonly Lazy<Qwen2Tokenizer> FromGguf = new(() => Qwen2Tokenizer.FromGguf(Exported.Value));

    [Fact]
    public void Corpus_ids_equal_Hugging_Face()
    {
        var ours = FromGguf.Value;
        var hf = TokenizerFamilies.Reference("qwen2.5");
        var texts = TokenizerCorpus.Fixed.Append(TokenizerCorpus.LongParagraph()).Concat(TokenizerCorpus.Random(1500)).ToList();
        foreach (var text in texts)
        {
            var ids = ours.Encode(text);
            Assert.Equal(hf.Encode(text), ids);
        }
    }

    [Fact]
    public void Vocabulary_added_tokens_and_settings_match_the_json_tokenizer()
    {
        var ours = FromGguf.Value;
        var json = TokenizerFamilies.Tokenizer("qwen2.5");
        Assert.Equal(json.VocabSize, ours.VocabSize);
        for (int id = 0; id < json.VocabSize; id++) Assert.Equal(json.IdToToken(id), ours.IdToToken(id));
        Assert.Equal(json.AddedTokens.Select(t => (t.Id, t.Content)), ours.AddedTokens.Select(t => (t.Id, t.Content)));
        Assert.Equal(json.Settings.ChatTemplate, ours.Settings.ChatTemplate);
        Assert.Equal(json.Settings.EosToken, ours.Settings.EosToken);
        Assert.Equal(json.Settings.PadToken, ours.Settings.PadToken);
        Assert.False(ours.Settings.AddBosToken);
        // Load() takes the .gguf path too (the CLI passes what --model resolves to).
        Assert.Equal(ours.Encode("hello <|im_end|> world"), Qwen2Tokenizer.Load(Exported.Value).Encode("hello <|im_end|> world"));
    }

    [Fact]
    public void Decoding_round_trips_like_the_json_tokenizer()
    {
        var ours = FromGguf.Value;
        var json = TokenizerFamilies.Tokenizer("qwen2.5");
        foreach (var text in TokenizerCorpus.Fixed)
        {
            var ids = json.Encode(text);
            Assert.Equal(json.Decode(ids), ours.Decode(ids));
        }
    }
}
