using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using Qwen2.Native.Tests;
using ChatMessage = OpenAI.Chat.ChatMessage;
using Msg = Qwen2.Native.Text.ChatMessage;

namespace Qwen2.Server.Tests;

/// <summary>
/// logprobs and top_logprobs, read by the OpenAI SDK and as raw completions JSON: one entry per generated token (as
/// many as usage's completion_tokens), each the log-softmax of the model's logits at that step, recomputed here without
/// the server, the batch or a cache.
/// </summary>
public sealed class LogprobsTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private const string Question = "Name three colors.";

    /// <summary>ln softmax of the logits that follow <paramref name="prompt"/> and the first <paramref name="step"/> generated ids.</summary>
    private double[] LogSoftmaxAfter(int[] prompt, IReadOnlyList<int> generated, int step)
    {
        var logits = tiny.Model.Forward([.. prompt, .. generated.Take(step)]).Last.ToArray();
        double max = logits.Max(), sum = logits.Sum(v => Math.Exp(v - max));
        return logits.Select(v => v - max - Math.Log(sum)).ToArray();
    }

    private byte[] Bytes(int id) => tiny.Tokenizer.GetTokenBytes(id).ToArray();

    [Fact]
    public async Task ChatLogprobsAreTheModelsStreamedOrNot()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        int[] prompt = Reference.ChatPrompt(tiny.Pipeline, Msg.User(Question));
        var expected = Reference.Generate(tiny.Pipeline, prompt, Reference.Greedy(tiny.Pipeline), 8);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        var result = (await host.Chat().CompleteChatAsync([ChatMessage.CreateUserMessage(Question)], options)).Value;

        var steps = result.ContentTokenLogProbabilities;
        Assert.Equal(result.Usage.OutputTokenCount, steps.Count);
        Assert.Equal(expected.Ids.Length, steps.Count);
        for (int i = 0; i < steps.Count; i++)
        {
            var reference = LogSoftmaxAfter(prompt, expected.Ids, i);
            Assert.Equal(Bytes(expected.Ids[i]), steps[i].Utf8Bytes?.ToArray());
            Assert.Equal(Encoding.UTF8.GetString(Bytes(expected.Ids[i])), steps[i].Token);
            Assert.Equal(reference[expected.Ids[i]], steps[i].LogProbability, 1e-4);
            var best = reference.OrderDescending().Take(3).ToArray();
            Assert.Equal(3, steps[i].TopLogProbabilities.Count);
            for (int k = 0; k < 3; k++) Assert.Equal(best[k], steps[i].TopLogProbabilities[k].LogProbability, 1e-4);
        }

        var streamed = new List<ChatTokenLogProbabilityDetails>();
        await foreach (var update in host.Chat().CompleteChatStreamingAsync([ChatMessage.CreateUserMessage(Question)], options))
            streamed.AddRange(update.ContentTokenLogProbabilities);
        Assert.Equal(steps.Select(s => (s.Token, s.LogProbability)), streamed.Select(s => (s.Token, s.LogProbability)));
        Assert.Equal(steps.Select(s => s.TopLogProbabilities.Count), streamed.Select(s => s.TopLogProbabilities.Count));
    }

    [Fact]
    public async Task ChatWithoutLogprobsSendsNone()
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        var response = await host.Http.PostAsync("/v1/chat/completions", new StringContent(
            $"{{\"messages\":[{{\"role\":\"user\",\"content\":\"{Question}\"}}],\"max_tokens\":3,\"logprobs\":false}}", Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var choice = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0];
        Assert.False(choice.TryGetProperty("logprobs", out var lp) && lp.ValueKind != JsonValueKind.Null);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CompletionLogprobsCoverEveryTokenWithOffsets(bool stream)
    {
        await using var host = await TestServerHost.StartAsync(tiny.Pipeline);
        int[] prompt = tiny.Tokenizer.Encode("The capital of France is");
        var expected = Reference.Generate(tiny.Pipeline, prompt, Reference.Greedy(tiny.Pipeline), 10);
        string body = $"{{\"prompt\":[{string.Join(',', prompt)}],\"max_tokens\":10,\"temperature\":0,\"logprobs\":2,\"stream\":{(stream ? "true" : "false")},\"stream_options\":{{\"include_usage\":true}}}}";
        var response = await host.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        var choices = new List<JsonElement>();
        int completionTokens = -1;
        if (stream)
        {
            foreach (var data in await Sse.ReadAllAsync(response))
            {
                if (data == "[DONE]") continue;
                var e = Sse.Parse(data);
                foreach (var c in e.GetProperty("choices").EnumerateArray()) choices.Add(c);
                if (e.TryGetProperty("usage", out var u)) completionTokens = u.GetProperty("completion_tokens").GetInt32();
            }
        }
        else
        {
            var e = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            choices.Add(e.GetProperty("choices")[0]);
            completionTokens = e.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        }

        var tokens = new List<string>();
        var values = new List<double>();
        var tops = new List<JsonElement>();
        var offsets = new List<int>();
        foreach (var c in choices)
        {
            if (!c.TryGetProperty("logprobs", out var lp) || lp.ValueKind == JsonValueKind.Null) continue;
            tokens.AddRange(lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!));
            values.AddRange(lp.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetDouble()));
            tops.AddRange(lp.GetProperty("top_logprobs").EnumerateArray());
            offsets.AddRange(lp.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()));
        }
        Assert.Equal(completionTokens, tokens.Count);
        Assert.Equal(expected.Ids.Length, tokens.Count);
        int offset = 0;
        for (int i = 0; i < tokens.Count; i++)
        {
            var reference = LogSoftmaxAfter(prompt, expected.Ids, i);
            Assert.Equal(Encoding.UTF8.GetString(Bytes(expected.Ids[i])), tokens[i]);
            Assert.Equal(reference[expected.Ids[i]], values[i], 1e-4);
            var top = tops[i].EnumerateObject().Select(p => p.Value.GetDouble()).ToArray();
            Assert.InRange(top.Length, 1, 2); // two ids may read as the same text
            Assert.Equal(reference.Max(), top[0], 1e-4);
            Assert.Equal(offset, offsets[i]);
            offset += tokens[i].Length;
        }
    }
}
