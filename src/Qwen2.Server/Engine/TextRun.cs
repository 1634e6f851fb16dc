using System.Diagnostics;
using System.Runtime.CompilerServices;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;

namespace Qwen2.Server.Engine;

/// <summary>
/// One generation through the batch generator, as text: tokens decoded as they come, stop strings cut out (a stop
/// string split over tokens is never half-sent), and the counts and finish reason usage reports. Ending the read
/// early, or <c>cancellationToken</c> (the client gone, a timeout), cancels the request, which frees its KV blocks
/// at the generator's next step.
/// </summary>
internal sealed class TextRun(ServerEngine engine, int[] prompt, GenerationOptions options, IReadOnlyList<string> stops)
{
    public int PromptTokens => prompt.Length;
    public bool WantsLogprobs => options.TopLogprobs is not null;
    public int CompletionTokens { get; private set; }
    public int CachedTokens { get; private set; }

    /// <summary>Text and the log-probabilities of the tokens that released it (null when the request asked for none).</summary>
    public readonly record struct TextPiece(string Text, IReadOnlyList<TokenLogprobs>? Logprobs);

    private static TextPiece Take(string text, ref List<TokenLogprobs>? pending)
    {
        if (pending is null) return new TextPiece(text, null);
        var piece = new TextPiece(text, pending);
        pending = [];
        return piece;
    }

    /// <summary>"stop" or "length" once the pieces have all been read.</summary>
    public string? FinishReason { get; private set; }

    public async IAsyncEnumerable<TextPiece> PiecesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var generator = engine.ReadyGenerator;
        var metrics = engine.Metrics;
        var request = generator.Submit(prompt, options, cancellationToken);
        var tokenizer = generator.Pipeline!.Tokenizer;
        var decoder = tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var matcher = new StopStringMatcher(stops);
        // Log-probabilities of tokens whose text is still held back (half a character, a possible stop string) wait
        // for the piece that releases it; every generated token's go out, so they number completion_tokens.
        List<TokenLogprobs>? pending = options.TopLogprobs is null ? null : [];
        long last = Stopwatch.GetTimestamp();
        bool hit = false;
        try
        {
            await foreach (int id in request.ReadTokensAsync(cancellationToken).ConfigureAwait(false))
            {
                long now = Stopwatch.GetTimestamp();
                (CompletionTokens == 0 ? metrics.TimeToFirstToken : metrics.TimePerOutputToken).Record(Stopwatch.GetElapsedTime(last, now).TotalSeconds);
                last = now;
                if (CompletionTokens == 0) CachedTokens = request.SharedPromptTokens;
                pending?.Add(request.GetLogprobs(CompletionTokens));
                CompletionTokens++;
                // An id past the tokenizer (a padding row of the embedding, which no trained model picks) has no text.
                var (ready, stopped) = matcher.Push(id < tokenizer.VocabSize ? decoder.Append(id) : "");
                if (ready.Length > 0 || stopped && pending is { Count: > 0 }) yield return Take(ready, ref pending);
                if (stopped) { hit = true; break; }
            }
            if (!hit)
            {
                var (ready, stopped) = matcher.Push(decoder.Flush());
                string rest = stopped ? "" : matcher.Drain();
                if (ready.Length + rest.Length > 0 || pending is { Count: > 0 }) yield return Take(ready + rest, ref pending);
                hit = stopped;
            }
            var reason = hit ? StopReason.StopString : (await request.Completion.ConfigureAwait(false)).StopReason;
            FinishReason = reason switch
            {
                StopReason.EndOfSequence or StopReason.StopString => "stop",
                StopReason.MaxTokens or StopReason.ContextFull => "length",
                // The generator ended it: the client's token fired, or the server is shutting down.
                _ => throw new OperationCanceledException("the generation was cancelled before it finished"),
            };
            metrics.Requests.Add(1, new KeyValuePair<string, object?>("finish_reason", FinishReason));
        }
        finally
        {
            // A stop string, an early end of the read or an exception: end the request now rather than at max_tokens.
            request.Cancel();
            metrics.PromptTokens.Add(prompt.Length);
            metrics.CachedPromptTokens.Add(CachedTokens);
            metrics.GeneratedTokens.Add(CompletionTokens);
        }
    }
}
