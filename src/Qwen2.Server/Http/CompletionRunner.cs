using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Qwen2.Native.Text;
using Qwen2.Server.Engine;
using Qwen2.Server.Protocol;

namespace Qwen2.Server.Http;

/// <summary>
/// Runs a chat or text completion whose prompt is tokenized: checks it fits the context, takes a place in the
/// batch, then answers in one JSON body or as a stream of chunks.
/// </summary>
internal static class CompletionRunner
{
    public static async Task RunAsync(HttpContext context, ServerEngine engine, int[] prompt, SamplingRequest request, bool chat, ReasoningSplitter? reasoning = null)
    {
        int window = engine.ContextSize;
        if (prompt.Length >= window)
            throw new ApiException(400, "exceed_context_size_error",
                $"the prompt is {prompt.Length} tokens, and this server's context holds {window} tokens (prompt and reply together); shorten the prompt or start the server with a larger --context", "messages");
        var options = request.ToOptions(prompt.Length, window, engine.Pipeline.TextStopTokenIds);
        using var admission = engine.Admit();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (engine.Options.RequestTimeout is { } t) timeout.CancelAfter(t);
        var run = new TextRun(engine, prompt, options, request.Stops);
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (request.Stream) await StreamAsync(context, engine, run, request, chat, reasoning, id, created, timeout.Token);
        else await AnswerAsync(context, engine, run, chat, reasoning, id, created, timeout.Token);
    }

    private static Usage UsageOf(TextRun run) =>
        new(run.PromptTokens, run.CompletionTokens, run.PromptTokens + run.CompletionTokens, new PromptTokensDetails(run.CachedTokens));

    private static async Task AnswerAsync(HttpContext context, ServerEngine engine, TextRun run, bool chat, ReasoningSplitter? reasoning, string id, long created, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        var logprobs = run.WantsLogprobs ? new List<Native.Generation.TokenLogprobs>() : null;
        try
        {
            await foreach (var piece in run.PiecesAsync(cancellationToken))
            {
                text.Append(piece.Text);
                if (piece.Logprobs is { } lp) logprobs!.AddRange(lp);
            }
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            throw Ended(engine);
        }
        var response = context.Response;
        response.ContentType = "application/json";
        var tokenizer = engine.Pipeline.Tokenizer;
        if (chat)
        {
            var message = new ChatMessageBody("assistant", text.ToString());
            if (reasoning is not null)
            {
                var (r, c) = (reasoning.Push(message.Content), reasoning.Flush());
                message = new ChatMessageBody("assistant", r.Content + c.Content, NullIfEmpty(r.Reasoning + c.Reasoning));
            }
            var body = new ChatCompletion(id, created, engine.ModelId, [new ChatChoice(0, message, LogprobsBody.Chat(logprobs, tokenizer), run.FinishReason)], UsageOf(run));
            await JsonSerializer.SerializeAsync(response.Body, body, ServerJsonContext.Api.ChatCompletion, context.RequestAborted);
        }
        else
        {
            int offset = 0;
            var body = new TextCompletion(id, created, engine.ModelId, [new TextChoice(0, text.ToString(), LogprobsBody.Text(logprobs, tokenizer, ref offset), run.FinishReason)], UsageOf(run));
            await JsonSerializer.SerializeAsync(response.Body, body, ServerJsonContext.Api.TextCompletion, context.RequestAborted);
        }
    }

    private static async Task StreamAsync(HttpContext context, ServerEngine engine, TextRun run, SamplingRequest request, bool chat, ReasoningSplitter? reasoning, string id, long created, CancellationToken cancellationToken)
    {
        var sse = new SseWriter(context.Response, context.RequestAborted);
        string model = engine.ModelId;
        var tokenizer = engine.Pipeline.Tokenizer;
        int offset = 0;
        await sse.StartAsync();
        // OpenAI names the role in the first chunk only, with empty content.
        if (chat) await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [new ChunkChoice(0, new ChunkDelta("assistant", ""), null, null)], null), ServerJsonContext.Api.ChatCompletionChunk);
        try
        {
            await foreach (var piece in run.PiecesAsync(cancellationToken))
            {
                if (chat)
                {
                    var delta = Delta(piece.Text, reasoning);
                    // Text held back (a tag may be starting) waits for the next chunk, but a token's logprobs go now.
                    if (delta is not null || piece.Logprobs is not null)
                        await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [new ChunkChoice(0, delta ?? new ChunkDelta(null, ""), LogprobsBody.Chat(piece.Logprobs, tokenizer), null)], null), ServerJsonContext.Api.ChatCompletionChunk);
                }
                else await sse.WriteAsync(new TextCompletion(id, created, model, [new TextChoice(0, piece.Text, LogprobsBody.Text(piece.Logprobs, tokenizer, ref offset), null)], null), ServerJsonContext.Api.TextCompletion);
            }
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            // Headers are sent: the error goes in the stream, as llama.cpp and vLLM send one.
            var e = Ended(engine);
            await sse.WriteAsync(new ErrorResponse(new ErrorBody(e.Message, e.Type, e.Status, null)), ServerJsonContext.Api.ErrorResponse);
            return;
        }
        if (chat && reasoning?.Flush() is { IsEmpty: false } rest)
            await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [new ChunkChoice(0, new ChunkDelta(null, NullIfEmpty(rest.Content), NullIfEmpty(rest.Reasoning)), null, null)], null), ServerJsonContext.Api.ChatCompletionChunk);
        if (chat) await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [new ChunkChoice(0, new ChunkDelta(null, null), null, run.FinishReason)], null), ServerJsonContext.Api.ChatCompletionChunk);
        else await sse.WriteAsync(new TextCompletion(id, created, model, [new TextChoice(0, "", null, run.FinishReason)], null), ServerJsonContext.Api.TextCompletion);
        if (request.IncludeUsage)
        {
            if (chat) await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [], UsageOf(run)), ServerJsonContext.Api.ChatCompletionChunk);
            else await sse.WriteAsync(new TextCompletion(id, created, model, [], UsageOf(run)), ServerJsonContext.Api.TextCompletion);
        }
        await sse.DoneAsync();
    }

    /// <summary>A chat chunk's delta for a piece of text: reasoning and answer apart when a splitter is given; null when nothing is certain yet.</summary>
    private static ChunkDelta? Delta(string text, ReasoningSplitter? reasoning)
    {
        if (reasoning is null) return new ChunkDelta(null, text);
        var d = reasoning.Push(text);
        return d.IsEmpty ? null : new ChunkDelta(null, NullIfEmpty(d.Content), NullIfEmpty(d.Reasoning));
    }

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    /// <summary>Why a generation ended early while its client was still there: the timeout, or the server stopping.</summary>
    private static ApiException Ended(ServerEngine engine) => engine.Options.RequestTimeout is { } t
        ? new ApiException(503, "timeout_error", $"the generation was ended: it ran past the server's request timeout ({t.TotalSeconds:0.###} s) or the server is stopping", retryAfterSeconds: engine.Options.RetryAfterSeconds)
        : new ApiException(503, "unavailable_error", "the generation was ended: the server is stopping", retryAfterSeconds: engine.Options.RetryAfterSeconds);
}
