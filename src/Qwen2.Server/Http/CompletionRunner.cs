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
    public static async Task RunAsync(HttpContext context, ServerEngine engine, int[] prompt, SamplingRequest request, bool chat, ChatReply? reply = null)
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
        if (request.Stream) await StreamAsync(context, engine, run, request, chat, reply, id, created, timeout.Token);
        else await AnswerAsync(context, engine, run, chat, reply, id, created, timeout.Token);
    }

    private static Usage UsageOf(TextRun run) =>
        new(run.PromptTokens, run.CompletionTokens, run.PromptTokens + run.CompletionTokens, new PromptTokensDetails(run.CachedTokens));

    private static async Task AnswerAsync(HttpContext context, ServerEngine engine, TextRun run, bool chat, ChatReply? reply, string id, long created, CancellationToken cancellationToken)
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
            if (reply is not null)
            {
                var (a, b) = (reply.Push(text.ToString()), reply.Flush());
                var calls = a.Calls.Concat(b.Calls).Select(c => new ToolCallBody(c.Id, c.Type, c.Function)).ToArray();
                string content = a.Content + b.Content;
                // OpenAI's content is null beside tool calls when the model wrote no text.
                message = new ChatMessageBody("assistant", calls.Length > 0 && content.Length == 0 ? null : content, NullIfEmpty(a.Reasoning + b.Reasoning), calls.Length > 0 ? calls : null);
            }
            var body = new ChatCompletion(id, created, engine.ModelId, [new ChatChoice(0, message, LogprobsBody.Chat(logprobs, tokenizer), Finish(run, reply))], UsageOf(run));
            await JsonSerializer.SerializeAsync(response.Body, body, ServerJsonContext.Api.ChatCompletion, context.RequestAborted);
        }
        else
        {
            int offset = 0;
            var body = new TextCompletion(id, created, engine.ModelId, [new TextChoice(0, text.ToString(), LogprobsBody.Text(logprobs, tokenizer, ref offset), run.FinishReason)], UsageOf(run));
            await JsonSerializer.SerializeAsync(response.Body, body, ServerJsonContext.Api.TextCompletion, context.RequestAborted);
        }
    }

    private static async Task StreamAsync(HttpContext context, ServerEngine engine, TextRun run, SamplingRequest request, bool chat, ChatReply? reply, string id, long created, CancellationToken cancellationToken)
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
                    var delta = Delta(piece.Text, reply);
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
        if (chat && reply is not null && Delta(reply.Flush()) is { } rest)
            await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [new ChunkChoice(0, rest, null, null)], null), ServerJsonContext.Api.ChatCompletionChunk);
        if (chat) await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [new ChunkChoice(0, new ChunkDelta(null, null), null, Finish(run, reply))], null), ServerJsonContext.Api.ChatCompletionChunk);
        else await sse.WriteAsync(new TextCompletion(id, created, model, [new TextChoice(0, "", null, run.FinishReason)], null), ServerJsonContext.Api.TextCompletion);
        if (request.IncludeUsage)
        {
            if (chat) await sse.WriteAsync(new ChatCompletionChunk(id, created, model, [], UsageOf(run)), ServerJsonContext.Api.ChatCompletionChunk);
            else await sse.WriteAsync(new TextCompletion(id, created, model, [], UsageOf(run)), ServerJsonContext.Api.TextCompletion);
        }
        await sse.DoneAsync();
    }

    /// <summary>A chat chunk's delta for a piece of text: reasoning, answer and whole calls apart when the reply is split; null when nothing is certain yet.</summary>
    private static ChunkDelta? Delta(string text, ChatReply? reply) => reply is null ? new ChunkDelta(null, text) : Delta(reply.Push(text));

    private static ChunkDelta? Delta((string Reasoning, string Content, IReadOnlyList<ChunkToolCall> Calls) d) =>
        d.Reasoning.Length == 0 && d.Content.Length == 0 && d.Calls.Count == 0 ? null
        : new ChunkDelta(null, NullIfEmpty(d.Content), NullIfEmpty(d.Reasoning), d.Calls.Count > 0 ? [.. d.Calls] : null);

    /// <summary>OpenAI's finish reason: "tool_calls" when a reply that ended on its own called a function.</summary>
    private static string? Finish(TextRun run, ChatReply? reply) => reply is { CallCount: > 0 } && run.FinishReason == "stop" ? "tool_calls" : run.FinishReason;

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    /// <summary>Why a generation ended early while its client was still there: the timeout, or the server stopping.</summary>
    private static ApiException Ended(ServerEngine engine) => engine.Options.RequestTimeout is { } t
        ? new ApiException(503, "timeout_error", $"the generation was ended: it ran past the server's request timeout ({t.TotalSeconds:0.###} s) or the server is stopping", retryAfterSeconds: engine.Options.RetryAfterSeconds)
        : new ApiException(503, "unavailable_error", "the generation was ended: the server is stopping", retryAfterSeconds: engine.Options.RetryAfterSeconds);
}
