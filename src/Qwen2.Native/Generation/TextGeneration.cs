using System.Runtime.CompilerServices;
using Qwen2.Native.Text;

namespace Qwen2.Native.Generation;

/// <summary>Text in, streamed text out, over an <see cref="InferenceSession"/> and a <see cref="Qwen2Tokenizer"/>.</summary>
public static class TextGeneration
{
    /// <summary>
    /// Encodes <paramref name="prompt"/> as it is (no chat template), generates, and yields the text as it becomes
    /// complete: whole UTF-8 characters only, special tokens left out when <see cref="GenerationOptions.SkipSpecialTokens"/>,
    /// and text that could begin a stop string held back until it is known not to. Options null:
    /// <see cref="InferenceSession.DefaultOptions"/>; stop ids null: the model's eos ids plus the tokenizer's eos token
    /// (<see cref="Qwen2Pipeline.TextStopTokenIds"/>).
    /// </summary>
    public static IEnumerable<string> GenerateText(this InferenceSession session, Qwen2Tokenizer tokenizer, string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        return session.GenerateText(tokenizer, tokenizer.Encode(prompt), options, cancellationToken);
    }

    /// <summary>As <see cref="GenerateText(InferenceSession, Qwen2Tokenizer, string, GenerationOptions, CancellationToken)"/>, from token ids.</summary>
    public static IEnumerable<string> GenerateText(this InferenceSession session, Qwen2Tokenizer tokenizer, IReadOnlyList<int> promptIds, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= session.DefaultOptions;
        if (options.StopTokenIds is null) options = options with { StopTokenIds = GenerationDefaults.WithTokenizerEos(session.DefaultStopTokenIds, tokenizer) };
        session.Tokenizer ??= tokenizer; // a JSON response format reads the vocabulary from it
        var tokens = session.Generate(promptIds, options, cancellationToken); // validates now
        return Stream(session, tokenizer, tokens, options);
    }

    /// <summary>
    /// The streaming form of <see cref="GenerateText(InferenceSession, Qwen2Tokenizer, string, GenerationOptions, CancellationToken)"/>:
    /// each step runs on the thread pool, so the caller's thread (a UI, a request handler) is never blocked by the model.
    /// </summary>
    public static IAsyncEnumerable<string> GenerateTextAsync(this InferenceSession session, Qwen2Tokenizer tokenizer, string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        ToAsync(session.GenerateText(tokenizer, prompt, options, cancellationToken), cancellationToken);

    private static IEnumerable<string> Stream(InferenceSession session, Qwen2Tokenizer tokenizer, IEnumerable<int> tokens, GenerationOptions options)
    {
        var decoder = tokenizer.CreateStreamingDecoder(options.SkipSpecialTokens);
        var stops = new StopStringMatcher(options.StopStrings);
        using var e = tokens.GetEnumerator();
        while (e.MoveNext())
        {
            var (ready, hit) = stops.Push(decoder.AppendGenerated(e.Current));
            if (ready.Length > 0) yield return ready;
            if (hit)
            {
                e.Dispose(); // ends the token loop, which records its stats; then say why it ended
                session.MarkStopped(StopReason.StopString);
                yield break;
            }
        }
        var (tail, stopped) = stops.Push(decoder.Flush());
        tail += stopped ? "" : stops.Drain();
        if (tail.Length > 0) yield return tail;
        if (stopped) session.MarkStopped(StopReason.StopString);
    }

    /// <summary>Runs each step of <paramref name="source"/> on the thread pool.</summary>
    internal static async IAsyncEnumerable<T> ToAsync<T>(IEnumerable<T> source, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var e = source.GetEnumerator();
        while (await Task.Run(e.MoveNext, CancellationToken.None).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return e.Current;
        }
    }
}
