using System.Diagnostics;
using Qwen2.Native.Structured;
using Qwen2.Native.Text;

namespace Qwen2.Native.Generation;

/// <summary>
/// One sequence being generated: its tokens, its KV cache and its logits buffer, all sized once. Tokens appended
/// wait until the next <see cref="Evaluate"/> or generation step, so a turn of a conversation costs only its new
/// tokens. Not thread-safe; many sessions may share one <see cref="Qwen2Model"/> one at a time.
/// </summary>
public sealed class InferenceSession
{
    private readonly TokenHistory _tokens;
    private readonly float[] _logits;
    private readonly GenerationDefaults _defaults;
    private int _processed;
    private bool _logitsValid;

    /// <summary>
    /// Creates a session over <paramref name="model"/>; with a cache (the default) it is preallocated here. Its defaults
    /// (<see cref="DefaultOptions"/>, <see cref="DefaultStopTokenIds"/>) come from the model directory's generation_config.json.
    /// </summary>
    /// <exception cref="CheckpointException">The model directory's generation_config.json is malformed.</exception>
    public InferenceSession(Qwen2Model model, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        Options = options ?? new SessionOptions();
        if (Options.CacheCapacity is < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.CacheCapacity, "CacheCapacity must be at least 1");
        _defaults = GenerationDefaults.For(model);
        Cache = Options.UseCache ? model.CreateCache(Options.CacheCapacity, Options.CacheOptions) : null;
        _logits = new float[model.Config.VocabSize];
        _tokens = new TokenHistory(model.Config.VocabSize);
    }

    /// <summary>The model.</summary>
    public Qwen2Model Model { get; }

    /// <summary>The options.</summary>
    public SessionOptions Options { get; }

    /// <summary>
    /// The tokenizer whose vocabulary a JSON <see cref="GenerationOptions.ResponseFormat"/> is matched against (set by
    /// <see cref="TextGeneration"/> when null). Null: a generation with a JSON response format throws.
    /// </summary>
    public Qwen2Tokenizer? Tokenizer { get; set; }

    /// <summary>The KV cache (null when <see cref="SessionOptions.UseCache"/> is false).</summary>
    public PastKeyValues? Cache { get; }

    /// <summary>Every token of the sequence: those already run through the model, then those waiting.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    /// <summary>Tokens already run through the model (in the cache, when there is one).</summary>
    public int ProcessedTokens => _processed;

    /// <summary>Tokens appended but not yet run.</summary>
    public int PendingTokens => _tokens.Count - _processed;

    /// <summary>Counts and timings of the latest generation, once it has ended.</summary>
    public GenerationStats? LastStats { get; private set; }

    /// <summary>
    /// The log-probabilities of the token <see cref="Generate"/> yielded last, when its options asked for them
    /// (<see cref="GenerationOptions.TopLogprobs"/>); null otherwise. Read it before moving to the next token.
    /// </summary>
    public TokenLogprobs? LastLogprobs { get; private set; }

    /// <summary>The model's end-of-sequence ids: generation_config.json's, then config.json's, without repeats.</summary>
    public IReadOnlyList<int> DefaultStopTokenIds => _defaults.StopTokenIds;

    /// <summary>What a generation given no options does: generation_config.json's sampling (<see cref="GenerationOptions.FromConfig"/>).</summary>
    public GenerationOptions DefaultOptions => _defaults.Options;

    /// <summary>Appends tokens to the sequence; they run at the next <see cref="Evaluate"/> or generation step.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary; nothing is appended.</exception>
    public void Append(ReadOnlySpan<int> ids)
    {
        TokenHistory.Validate(ids, Model.Config.VocabSize, nameof(ids));
        _tokens.AddRange(ids);
        if (!ids.IsEmpty) _logitsValid = false;
    }

    /// <summary>Runs the waiting tokens and returns the logits that follow the last token of the sequence.</summary>
    /// <exception cref="InvalidOperationException">The sequence is empty.</exception>
    /// <exception cref="CacheFullException">The cache cannot take the waiting tokens; nothing changed.</exception>
    public ReadOnlySpan<float> Evaluate()
    {
        if (_logitsValid) return _logits;
        if (_tokens.Count == 0) throw new InvalidOperationException("the session holds no tokens; append a prompt first");
        EnsurePending();
        var all = _tokens.Span;
        if (Cache is not null) Model.ForwardInto(all[_processed..], Cache, _logits, LogitsSelection.Last);
        else Model.ForwardInto(all, null, _logits, LogitsSelection.Last);
        _processed = _tokens.Count;
        _logitsValid = true;
        return _logits;
    }

    /// <summary>Whether the cache can run <paramref name="tokens"/> more tokens (always true without a cache or with a sliding one).</summary>
    public bool HasRoomFor(int tokens) =>
        Cache is null || Cache.HasRoomFor(tokens);

    /// <summary>
    /// Appends <paramref name="prompt"/> and yields new tokens, one per step, until a stop token, the token limit, a full
    /// cache, cancellation, or the caller stops reading. Each yielded token is in <see cref="Tokens"/>; it runs through
    /// the model only when the sequence continues, so a conversation's next turn starts where this one ended.
    /// </summary>
    /// <param name="prompt">Tokens to append first (may be empty when the session already holds some).</param>
    /// <param name="options">Sampling and stopping; null: <see cref="DefaultOptions"/>.</param>
    /// <param name="cancellationToken">Stops generation between two tokens.</param>
    /// <exception cref="OperationCanceledException">Cancelled; the cache then holds exactly the tokens processed so far.</exception>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        options = _defaults.Resolve(options);
        var ids = prompt.ToArray();
        if (!HasRoomFor(PendingTokens + ids.Length))
            throw new CacheFullException($"the cache holds {Cache!.Count} of {Cache.Capacity} tokens; {PendingTokens + ids.Length} more do not fit. Start a new session or give it a larger CacheCapacity");
        Append(ids); // validated and appended now, not at the first MoveNext
        if (_tokens.Count == 0) throw new ArgumentException("the prompt is empty and the session holds no tokens", nameof(prompt));
        if (!_logitsValid) EnsurePending(); // so the stats count the token TruncateTo left to run again
        var sampler = new Sampler(options.Sampling, Model.Config.VocabSize);
        var stop = new StopCriteria(options, DefaultStopTokenIds);
        var constraint = options.CreateConstraint(Tokenizer, Model.Config.VocabSize, stop);
        return Run(sampler, stop, constraint, options.TopLogprobs, cancellationToken);
    }

    private IEnumerable<int> Run(Sampler sampler, StopCriteria stop, TokenConstraint? constraint, int? topLogprobs, CancellationToken ct)
    {
        var scratch = topLogprobs is null ? null : new float[_logits.Length];
        int promptTokens = PendingTokens, generated = 0, steps = 0;
        var reason = StopReason.None;
        var prefill = TimeSpan.Zero;
        var decode = new Stopwatch();
        LastStats = null;
        LastLogprobs = null;
        try
        {
            ct.ThrowIfCancellationRequested();
            if (stop.MaxNewTokens == 0) { reason = StopReason.MaxTokens; yield break; }
            var t0 = Stopwatch.GetTimestamp();
            Evaluate();
            prefill = Stopwatch.GetElapsedTime(t0);
            while (true)
            {
                decode.Start();
                int next = _tokens.Sample(sampler, constraint, _logits);
                if (topLogprobs is int top) LastLogprobs = TokenLogprobs.Compute(_logits, next, top, scratch);
                Append([next]);
                generated++;
                decode.Stop();
                reason = stop.After(next, generated, contextFull: !HasRoomFor(1));
                // A complete JSON value ends the generation as its stop token would, even on the last allowed token.
                if (constraint is { IsComplete: true } && reason != StopReason.EndOfSequence) reason = StopReason.EndOfSequence;
                yield return next;
                if (reason != StopReason.None) yield break;
                ct.ThrowIfCancellationRequested();
                decode.Start();
                Evaluate();
                steps++;
                decode.Stop();
            }
        }
        finally
        {
            decode.Stop();
            if (reason == StopReason.None && ct.IsCancellationRequested) reason = StopReason.Cancelled;
            LastStats = new GenerationStats(promptTokens, generated, steps, prefill, decode.Elapsed, reason);
        }
    }

    /// <summary>Records why the latest generation ended when the caller ended it (a stop string, say).</summary>
    public void MarkStopped(StopReason reason)
    {
        if (LastStats is { } s) LastStats = s with { StopReason = reason };
    }

    /// <summary>
    /// Keeps the first <paramref name="tokens"/> tokens of the sequence and forgets the rest, so that a different
    /// continuation reuses the cached prefix (a conversation rendered again with a new ending, a rejected draft).
    /// </summary>
    /// <remarks>
    /// The cache is rewound to the kept tokens. When it cannot be rewound exactly (a sliding-window cache that has
    /// evicted keys) it is emptied and the kept tokens wait to run again. The logits are dropped: if nothing is appended
    /// before the next <see cref="Evaluate"/> or generation, the last kept token runs again to recompute them. The set of
    /// tokens the repetition penalty sees is rebuilt from the kept tokens; the sampler's random state belongs to each
    /// generation call and is not affected. <see cref="LastStats"/> is kept.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is negative or more than the sequence holds.</exception>
    public void TruncateTo(int tokens)
    {
        if ((uint)tokens > (uint)_tokens.Count)
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"can keep between 0 and the {_tokens.Count} tokens of the sequence");
        if (tokens == _tokens.Count) return;
        _tokens.TruncateTo(tokens);
        if (tokens < _processed) RewindProcessed(_processed - tokens);
        _logitsValid = false;
    }

    /// <summary>Leaves at least one token waiting to run, so that invalid logits can be recomputed.</summary>
    private void EnsurePending()
    {
        if (_processed == _tokens.Count && _processed > 0) RewindProcessed(1);
    }

    private void RewindProcessed(int tokens)
    {
        if (Cache is null) { _processed -= tokens; return; }
        // A cache that has evicted keys would hold fewer than the kept tokens after a rewind: start it over instead.
        if (Cache.Position != Cache.Count) { Cache.Reset(); _processed = 0; return; }
        Cache.Rewind(tokens);
        _processed -= tokens;
    }

    /// <summary>Forgets the sequence: tokens, cache and logits.</summary>
    public void Reset()
    {
        _tokens.Clear();
        Cache?.Reset();
        _processed = 0;
        _logitsValid = false;
    }
}
