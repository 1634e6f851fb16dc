using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>A batch request's text stream against decoding its ids at once.</summary>
public class BatchGeneratorTextTests(TinyChatModel chat) : IClassFixture<TinyChatModel>
{
    [Fact]
    public async Task TextStreamsJoinToTheDecodeOfTheGeneratedIds()
    {
        using var generator = new BatchGenerator(chat.Pipeline);
        generator.Start();
        var options = new GenerationOptions { MaxNewTokens = 40, IgnoreEos = true, Sampling = new SamplingOptions { Temperature = 1.0, Seed = 5 } };
        var requests = new[] { "héllo wörld 𝐇 你好", "1 + 1 =" }.Select(p => generator.Submit(chat.Tokenizer.Encode(p), options)).ToArray();
        var texts = await Task.WhenAll(requests.Select(async r =>
        {
            var pieces = new List<string>();
            await foreach (string piece in r.ReadTextAsync(skipSpecialTokens: false)) pieces.Add(piece);
            return pieces;
        }));
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.Equal(40, requests[i].Generated.Count);
            Assert.Equal(chat.Tokenizer.Decode(requests[i].Generated.ToArray()), string.Concat(texts[i]));
            Assert.DoesNotContain(texts[i], p => p.Length == 0);
        }
    }
}
