using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>Streaming text, stop strings, and multi-turn chat over one cache.</summary>
public class TextGenerationTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private static GenerationOptions Greedy(int n) => new() { MaxNewTokens = n, IgnoreEos = true };

    [Fact]
    public void StreamedTextIsTheDecodedTokens()
    {
        var ids = new InferenceSession(tiny.Model).Generate(tiny.Tokenizer.Encode("Once upon a time"), Greedy(24)).ToArray();
        var pieces = new InferenceSession(tiny.Model).GenerateText(tiny.Tokenizer, "Once upon a time", Greedy(24)).ToList();
        Assert.Equal(tiny.Tokenizer.Decode(ids, skipSpecialTokens: true), string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD') && !tiny.Tokenizer.Decode(ids).Contains('\uFFFD'));
    }

    [Fact]
    public async Task AsyncStreamingGivesTheSameText()
    {
        var sync = string.Concat(new InferenceSession(tiny.Model).GenerateText(tiny.Tokenizer, "abc", Greedy(16)));
        var pieces = new List<string>();
        var session = new InferenceSession(tiny.Model);
        await foreach (var p in session.GenerateTextAsync(tiny.Tokenizer, "abc", Greedy(16))) pieces.Add(p);
        Assert.Equal(sync, string.Concat(pieces));
        Assert.Equal(16, session.LastStats!.GeneratedTokens);
    }

    [Fact]
    public void AStopStringEndsTheTextBeforeIt()
    {
        string full = string.Concat(new InferenceSession(tiny.Model).GenerateText(tiny.Tokenizer, "The", Greedy(40)));
        Assert.True(full.Length > 12, full);
        string stop = full.Substring(full.Length / 2, 3);
        int at = full.IndexOf(stop, StringComparison.Ordinal);
        var session = new InferenceSession(tiny.Model);
        string cut = string.Concat(session.GenerateText(tiny.Tokenizer, "The", Greedy(40) with { StopStrings = ["\u0001never", stop] }));
        Assert.Equal(full[..at], cut);
        Assert.Equal(StopReason.StopString, session.LastStats!.StopReason);
    }

    [Theory]
    [InlineData(new[] { "Hel", "lo wo", "rld" }, new[] { "o w" }, "Hell", true)]
    [InlineData(new[] { "abcE", "ND" }, new[] { "END" }, "abc", true)]
    [InlineData(new[] { "abcE", "x" }, new[] { "END" }, "abcEx", false)]
    [InlineData(new[] { "a", "b" }, new string[0], "ab", false)]
    [InlineData(new[] { "xEN", "", "D tail" }, new[] { "END", "NDX" }, "x", true)]
    public void StopMatcherHoldsBackPossiblePrefixes(string[] pushes, string[] stops, string released, bool hit)
    {
        var m = new StopStringMatcher(stops);
        var text = "";
        bool stopped = false;
        foreach (var p in pushes)
        {
            var (ready, h) = m.Push(p);
            text += ready;
            if (h) { stopped = true; break; }
        }
        if (!stopped) text += m.Drain();
        Assert.Equal(released, text);
        Assert.Equal(hit, stopped);
    }

    [Fact]
    public void ChatTurnsAppendOnlyTheirNewTokens()
    {
        var chat = new ChatSession(tiny.Pipeline);
        var o = Greedy(6);
        string first = string.Concat(chat.Send("Hi there", o));
        var template = ChatTemplate.Qwen25;
        var firstPrompt = tiny.Tokenizer.Encode(template.Render([ChatMessage.User("Hi there")]));
        Assert.Equal(firstPrompt, chat.Session.Tokens.Take(firstPrompt.Length));
        Assert.Equal(firstPrompt.Length, chat.LastStats!.PromptTokens);

        int before = chat.Session.Tokens.Count;
        string second = string.Concat(chat.Send("And then?", o));
        var continuation = tiny.Tokenizer.Encode(template.RenderContinuation(ChatMessage.User("And then?"), replyClosed: false));
        Assert.Equal(continuation, chat.Session.Tokens.Skip(before).Take(continuation.Length));
        Assert.Equal(1 + continuation.Length, chat.LastStats!.PromptTokens); // the first reply's last token, then the new turn
        Assert.Equal(chat.Session.ProcessedTokens, chat.Session.Cache!.Count);

        Assert.Equal([ChatMessage.User("Hi there"), ChatMessage.Assistant(first), ChatMessage.User("And then?"), ChatMessage.Assistant(second)], chat.History);

        // The same turn on a fresh session that recomputes everything gives the same reply.
        var fresh = new InferenceSession(tiny.Model, new SessionOptions { UseCache = false });
        var replay = string.Concat(fresh.GenerateText(tiny.Tokenizer, chat.Session.Tokens.Take(before + continuation.Length).ToArray(), o));
        Assert.Equal(second, replay);

        chat.Reset();
        Assert.Empty(chat.History);
        Assert.Empty(chat.Session.Tokens);
    }

    [Fact]
    public void ASystemPromptReplacesTheDefault()
    {
        var chat = new ChatSession(tiny.Pipeline, new ChatSessionOptions { SystemPrompt = "Be brief." });
        _ = chat.Send("Hi", Greedy(2)).ToList();
        var expected = tiny.Tokenizer.Encode("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        Assert.Equal(expected, chat.Session.Tokens.Take(expected.Length));
        Assert.Equal(ChatMessage.System("Be brief."), chat.History[0]);
    }

    [Fact]
    public async Task CancellingAStreamKeepsTheProcessedTokensAndTheChatGoesOn()
    {
        var chat = new ChatSession(tiny.Pipeline);
        using var cts = new CancellationTokenSource();
        int pieces = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in chat.SendAsync("Count to ten", Greedy(50), cts.Token))
                if (++pieces == 3) cts.Cancel();
        });
        Assert.Equal(StopReason.Cancelled, chat.LastStats!.StopReason);
        Assert.Equal(chat.Session.ProcessedTokens, chat.Session.Cache!.Count);
        Assert.Equal("assistant", chat.History[^1].Role);
        string next = string.Concat(chat.Send("Go on", Greedy(4)));
        Assert.Equal(4, chat.LastStats!.GeneratedTokens);
        Assert.Equal(4, chat.History.Count);
        Assert.Equal(ChatMessage.Assistant(next), chat.History[^1]);
    }

    [Fact]
    public void DefaultStopIdsAddTheTokenizersEos()
    {
        var ids = tiny.Pipeline.TextStopTokenIds;
        Assert.Contains(151645, ids); // <|im_end|>, the tokenizer's eos_token
        foreach (int id in tiny.Pipeline.DefaultStopTokenIds) Assert.Contains(id, ids);
    }
}
