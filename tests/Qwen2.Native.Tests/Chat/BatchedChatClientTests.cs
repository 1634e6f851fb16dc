using Microsoft.Extensions.AI;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen2.Native.Tests;

/// <summary>
/// <see cref="Qwen2ChatClient"/> over a running <see cref="BatchGenerator"/>: the replies the session-based client
/// gives, concurrent calls batched, and a conversation's earlier turns taken from the generator's prefix cache.
/// </summary>
public class BatchedChatClientTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private static ChatOptions Greedy(int max, params string[] stops) => new() { Temperature = 0, MaxOutputTokens = max, StopSequences = stops.Length > 0 ? stops : null };

    private BatchGenerator Generator()
    {
        var generator = new BatchGenerator(tiny.Pipeline, new BatchGeneratorOptions { CachePrefixes = true });
        generator.Start();
        return generator;
    }

    private async Task<ChatResponse> Alone(List<AIChatMessage> messages, ChatOptions options)
    {
        using var client = new Qwen2ChatClient(tiny.Pipeline);
        return await client.GetResponseAsync(messages, options);
    }

    [Fact]
    public async Task AConversationsEarlierTurnsComeFromThePrefixCache()
    {
        using var generator = Generator();
        using var client = new Qwen2ChatClient(generator);
        var messages = new List<AIChatMessage> { new(ChatRole.System, "You are a helpful assistant who answers in short sentences."), new(ChatRole.User, "What is a KV cache?") };
        var first = await client.GetResponseAsync(messages, Greedy(12));
        var expectedFirst = await Alone(messages, Greedy(12));
        Assert.Equal(expectedFirst.Text, first.Text);
        Assert.Equal(expectedFirst.Usage!.OutputTokenCount, first.Usage!.OutputTokenCount);
        Assert.Equal(expectedFirst.FinishReason, first.FinishReason);
        Assert.Equal(0, first.Usage.CachedInputTokenCount);

        messages.AddRange(first.Messages);
        messages.Add(new AIChatMessage(ChatRole.User, "And why is it paged?"));
        var second = await client.GetResponseAsync(messages, Greedy(12));
        Assert.Equal((await Alone(messages, Greedy(12))).Text, second.Text);
        // The first call's prompt, in whole 16-token blocks, was there to take.
        Assert.True(second.Usage!.CachedInputTokenCount >= first.Usage.InputTokenCount / 16 * 16,
            $"{second.Usage.CachedInputTokenCount} cached of {second.Usage.InputTokenCount}; the first prompt had {first.Usage.InputTokenCount} tokens");
    }

    [Fact]
    public async Task ConcurrentCallsGiveTheRepliesTheyGiveAlone()
    {
        using var generator = Generator();
        using var client = new Qwen2ChatClient(generator);
        string[] questions = ["Name three colors.", "Count to five.", "What is the sea?", "Say hello."];
        var calls = questions.Select(q => client.GetResponseAsync([new AIChatMessage(ChatRole.User, q)], Greedy(10))).ToArray();
        var replies = await Task.WhenAll(calls);
        for (int i = 0; i < questions.Length; i++)
            Assert.Equal((await Alone([new AIChatMessage(ChatRole.User, questions[i])], Greedy(10))).Text, replies[i].Text);
    }

    [Fact]
    public async Task StopSequencesAndStreamingMatchTheSessionClient()
    {
        var messages = new List<AIChatMessage> { new(ChatRole.User, "Tell me about the sea.") };
        string full = (await Alone(messages, Greedy(16))).Text;
        Assert.True(full.Length >= 4, $"the greedy reply is too short to pick a stop string from: \"{full}\"");
        string stop = full.Substring(full.Length / 2, 2);
        using var generator = Generator();
        using var client = new Qwen2ChatClient(generator);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, Greedy(16, stop))) updates.Add(u);
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(ChatFinishReason.Stop, updates[^1].FinishReason);
        Assert.Equal((await Alone(messages, Greedy(16, stop))).Usage!.OutputTokenCount, Assert.Single(updates[^1].Contents.OfType<UsageContent>()).Details.OutputTokenCount);
        Assert.Same(generator, client.GetService(typeof(BatchGenerator)));
        // Nothing is left running once the calls have ended.
        Assert.Equal(0, generator.ActiveCount + generator.WaitingCount);
    }

    [Fact]
    public void AGeneratorWithoutATokenizerOrNotRunningIsRefused()
    {
        using var bare = new BatchGenerator(tiny.Model);
        bare.Start();
        Assert.Contains("model alone", Assert.Throws<ArgumentException>(() => new Qwen2ChatClient(bare)).Message);
        using var idle = new BatchGenerator(tiny.Pipeline);
        Assert.Contains("Start()", Assert.Throws<ArgumentException>(() => new Qwen2ChatClient(idle)).Message);
    }
}
