using System.Diagnostics;
using System.Threading.Channels;
using Qwen2.Native.Generation;
using Qwen2.Native.Structured;

namespace Qwen2.Native.Serving;

/// <summary>One request of a <see cref="BatchGenerator"/>: its prompt, its streamed tokens, and how it ended.</summary>
public sealed class GenerationRequest
{
    private readonly BatchGenerator _owner;
    private readonly Channel<int> _channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource<GenerationStats> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Sampler _sampler;
    private readonly StopCriteria _stop;
    private readonly TokenConstraint? _constraint; // the JSON response format's matcher, touched only by the stepping thread
    private readonly TokenHistory _tokens; // writes and the reads of other threads lock _channel: a write may replace the buffer
    private readonly List<TokenLogprobs>? _logprobs; // written under _channel's lock, as _tokens
    private long _submitted, _firstToken;
    private volatile bool _cancel;
    private CancellationTokenRegistration _registration;

    internal GenerationRequest(int id, int[] prompt, GenerationOptions options, StopCriteria stop, TokenConstraint? constraint, int vocab, BatchGenerator owner)
    {
        Id = id; Prompt = prompt; Options = options; _stop = stop; _constraint = constraint; _owner = owner;
        _sampler = new Sampler(options.Sampling, vocab);
        _tokens = new TokenHistory(vocab, prompt.Length + Math.Min(options.MaxNewTokens, 1 << 16));
        _tokens.AddRange(prompt);
        if (options.TopLogprobs is not null) _logprobs = [];
        _submitted = Stopwatch.GetTimestamp();
    }

    /// <summary>A number unique within its generator, in submission order.</summary>
    public int Id { get; }
    /// <summary>The prompt.</summary>
    public IReadOnlyList<int> Prompt { get; }
    /// <summary>Sampling and stopping.</summary>
    public GenerationOptions Options { get; }
    /// <summary>Tokens generated so far.</summary>
    public IReadOnlyList<int> Generated { get { lock (_channel) return _tokens.Span[Prompt.Count..].ToArray(); } }
    /// <summary>Prompt tokens taken from another sequence's cache instead of being computed (prefix sharing), at the latest start.</summary>
    public int SharedPromptTokens { get; private set; }
    /// <summary>Times the request was set aside to free KV memory and resumed later.</summary>
    public int Preemptions { get; private set; }
    /// <summary>Completes with counts and timings once the request has ended (never faults for a cancellation: see its StopReason).</summary>
    public Task<GenerationStats> Completion => _done.Task;

    /// <summary>The generated tokens as they come; ends when the request ends.</summary>
    public IAsyncEnumerable<int> ReadTokensAsync(CancellationToken cancellationToken = default) => _channel.Reader.ReadAllAsync(cancellationToken);

    /// <summary>
    /// The log-probabilities of generated token <paramref name="index"/> (0 is the first), there once that token can be
    /// read from <see cref="ReadTokensAsync"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The request's options did not ask for them (<see cref="GenerationOptions.TopLogprobs"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">No token <paramref name="index"/> has been generated yet.</exception>
    public TokenLogprobs GetLogprobs(int index)
    {
        if (_logprobs is null) throw new InvalidOperationException("this request was submitted without GenerationOptions.TopLogprobs, so no log-probabilities were kept");
        lock (_channel)
        {
            if ((uint)index >= (uint)_logprobs.Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"{_logprobs.Count} tokens have been generated so far");
            return _logprobs[index];
        }
    }

    /// <summary>Ends this request at the next step; the others go on undisturbed.</summary>
    public void Cancel()
    {
        _cancel = true;
        _owner.Wake();
    }

    internal bool CancelRequested => _cancel;
    internal PastKeyValues? Sequence { get; private set; }
    internal int Processed { get; set; }
    internal int TokenCount => _tokens.Count;
    internal int TokenAt(int index) => _tokens[index];

    internal ReadOnlyMemory<int> TokenMemory(int start, int length) => _tokens.Memory(start, length);

    /// <summary>The generator this request was submitted to.</summary>
    internal BatchGenerator Owner => _owner;

    internal void Register(CancellationToken token) => _registration = token.Register(Cancel);

    internal void Start(PastKeyValues sequence, int shared)
    {
        Sequence = sequence;
        Processed = shared;
        SharedPromptTokens = shared;
    }

    internal void Suspend()
    {
        Sequence = null;
        Processed = 0;
        Preemptions++;
    }

    /// <summary>Picks the next token from <paramref name="logits"/> and records it, with its log-probabilities when asked for.</summary>
    internal int Sample(ReadOnlySpan<float> logits, Span<float> scratch)
    {
        int token = _tokens.Sample(_sampler, _constraint, logits);
        if (Options.TopLogprobs is int top)
        {
            var lp = TokenLogprobs.Compute(logits, token, top, scratch);
            lock (_channel) _logprobs!.Add(lp);
        }
        return token;
    }

    /// <summary>Records and streams a sampled token; says whether that ends the request.</summary>
    internal StopReason Emit(int token, int maxTokens)
    {
        if (_tokens.Count == Prompt.Count) _firstToken = Stopwatch.GetTimestamp();
        lock (_channel) _tokens.Add(token);
        _channel.Writer.TryWrite(token);
        var reason = _stop.After(token, _tokens.Count - Prompt.Count, contextFull: _tokens.Count > maxTokens);
        // A complete JSON value ends the request as its stop token would.
        return _constraint is { IsComplete: true } && reason != StopReason.EndOfSequence ? StopReason.EndOfSequence : reason;
    }

    internal void Complete(StopReason reason)
    {
        _registration.Dispose();
        _channel.Writer.TryComplete();
        long end = Stopwatch.GetTimestamp();
        int generated = _tokens.Count - Prompt.Count;
        var prefill = generated > 0 ? Stopwatch.GetElapsedTime(_submitted, _firstToken) : Stopwatch.GetElapsedTime(_submitted, end);
        var decode = generated > 0 ? Stopwatch.GetElapsedTime(_firstToken, end) : TimeSpan.Zero;
        _done.TrySetResult(new GenerationStats(Prompt.Count, generated, Math.Max(0, generated - 1), prefill, decode, reason));
    }

    internal void Fail(Exception e)
    {
        _registration.Dispose();
        _channel.Writer.TryComplete(e);
        _done.TrySetException(e);
    }
}
