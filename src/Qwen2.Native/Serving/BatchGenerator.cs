using Qwen2.Native.Generation;

namespace Qwen2.Native.Serving;

/// <summary>
/// Continuous batching: requests (a prompt and sampling options) join a running batch between steps, each step runs
/// one token of every decoding sequence, plus prompt chunks of new ones, through the weights once
/// (<see cref="Qwen2Model.ForwardBatch"/>), and every request streams its own tokens. A request that is cancelled or
/// finishes leaves at the next step without disturbing the others. When the KV pool runs short, the newest request is
/// set aside (its blocks freed) and resumes, recomputing its tokens, once there is room: no sequence is corrupted.
/// </summary>
/// <remarks>
/// Run it either with <see cref="Start"/> (a background thread steps whenever work is waiting) or by calling
/// <see cref="Step"/> yourself. A request's tokens are those the same request would produce alone: each sequence
/// attends only to itself, and its sampler is its own.
/// </remarks>
public sealed class BatchGenerator : IDisposable
{
    private readonly Qwen2Model _model;
    private readonly GenerationDefaults _defaults;
    private readonly object _lock = new();
    private readonly LinkedList<GenerationRequest> _waiting = new();
    private readonly List<GenerationRequest> _active = [];
    private readonly List<BatchInput> _inputs = [];
    private readonly List<GenerationRequest> _inBatch = [];
    private readonly float[] _logits;
    private float[]? _logprobScratch;
    private readonly SemaphoreSlim _signal = new(0);
    private Thread? _loop;
    private volatile bool _disposed;
    private int _nextId;

    /// <summary>
    /// Creates a generator over <paramref name="model"/> alone (token ids in and out); nothing runs until
    /// <see cref="Start"/> or <see cref="Step"/>. Requests given no options get the model directory's generation_config.json defaults.
    /// </summary>
    /// <exception cref="CheckpointException">The model directory's generation_config.json is malformed.</exception>
    public BatchGenerator(Qwen2Model model, BatchGeneratorOptions? options = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _defaults = GenerationDefaults.For(model);
        Options = options ?? new BatchGeneratorOptions();
        Options.Validate();
        Cache = new BatchingKvCache(model, Options.Cache);
        _logits = new float[(long)Options.MaxBatchSize * model.Config.VocabSize];
    }

    /// <summary>
    /// Creates a generator over a pipeline's model whose requests can also be read as text
    /// (<see cref="GenerationRequestText.ReadTextAsync"/>, with the pipeline's tokenizer).
    /// </summary>
    public BatchGenerator(Qwen2Pipeline pipeline, BatchGeneratorOptions? options = null)
        : this((pipeline ?? throw new ArgumentNullException(nameof(pipeline))).Model, options)
    {
        Pipeline = pipeline;
    }

    /// <summary>The pipeline the generator was made from; null when it was made from a model alone.</summary>
    public Qwen2Pipeline? Pipeline { get; }

    /// <summary>How requests are scheduled.</summary>
    public BatchGeneratorOptions Options { get; }

    /// <summary>What a request submitted without options does: generation_config.json's sampling (<see cref="GenerationOptions.FromConfig"/>).</summary>
    public GenerationOptions DefaultOptions => _defaults.Options;

    /// <summary>The stop ids of a request whose options give none: generation_config.json's eos ids, then config.json's.</summary>
    public IReadOnlyList<int> DefaultStopTokenIds => _defaults.StopTokenIds;

    /// <summary>The sequences' KV memory, with its pool's use.</summary>
    public BatchingKvCache Cache { get; }

    /// <summary>Requests in the running batch.</summary>
    public int ActiveCount { get { lock (_lock) return _active.Count; } }

    /// <summary>Requests waiting for room in the batch.</summary>
    public int WaitingCount { get { lock (_lock) return _waiting.Count; } }

    /// <summary>Whether <see cref="Start"/> has started the background thread (and the generator is not disposed).</summary>
    public bool IsRunning { get { lock (_lock) return _loop is not null && !_disposed; } }

    /// <summary>Steps run so far.</summary>
    public long Steps { get; private set; }

    /// <summary>Queues a request; its tokens stream from <see cref="GenerationRequest.ReadTokensAsync"/> as steps run.</summary>
    /// <param name="prompt">Prompt token ids (at least one), each in the vocabulary.</param>
    /// <param name="options">Sampling and stopping; null: <see cref="DefaultOptions"/> (generation_config.json's, as everywhere else).</param>
    /// <param name="cancellationToken">Cancels this request alone.</param>
    /// <exception cref="InvalidOperationException">The options ask for a JSON response format but the generator was made from a model alone (no tokenizer).</exception>
    public GenerationRequest Submit(IReadOnlyList<int> prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ObjectDisposedException.ThrowIf(_disposed, this);
        options = _defaults.Resolve(options);
        if (options.StopStrings.Count > 0) throw new ArgumentException("stop strings need text; the batch generator works on token ids (use stop token ids)", nameof(options));
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty; a request needs at least one token", nameof(prompt));
        int vocab = _model.Config.VocabSize;
        var ids = prompt.ToArray();
        TokenHistory.Validate(ids, vocab, nameof(prompt));
        var stop = new StopCriteria(options, _defaults.StopTokenIds);
        var constraint = options.CreateConstraint(Pipeline?.Tokenizer, vocab, stop); // a JSON format needs the pipeline's vocabulary
        var request = new GenerationRequest(Interlocked.Increment(ref _nextId), ids, options, stop, constraint, vocab, this);
        lock (_lock) _waiting.AddLast(request);
        if (cancellationToken.CanBeCanceled) request.Register(cancellationToken);
        _signal.Release();
        return request;
    }

    /// <summary>Runs steps on a background thread whenever requests are waiting or running, until disposed.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lock)
        {
            if (_loop is not null) throw new InvalidOperationException("the generator is already running");
            _loop = new Thread(Loop) { IsBackground = true, Name = "qwen2-batch-generator" };
            _loop.Start();
        }
    }

    private void Loop()
    {
        while (!_disposed)
        {
            bool busy;
            try
            {
                busy = RunStep();
            }
            catch (Exception e)
            {
                // A failed step (an unexpected error in the model) fails every request in it rather than the process.
                FailAll(e);
                busy = false;
            }
            if (!busy) _signal.Wait(100);
        }
    }

    /// <summary>
    /// Runs one step on the calling thread: drops cancelled requests, admits waiting ones, runs one forward over the
    /// batch and samples a token for every sequence whose prompt is done. Returns false when there was nothing to do.
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="Start"/> was called: the background thread steps.</exception>
    public bool Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_loop is not null) throw new InvalidOperationException("the generator runs on its own thread (Start was called); do not call Step");
        return RunStep();
    }

    /// <summary>Steps until no request is waiting or running.</summary>
    public void RunToCompletion()
    {
        while (Step()) { }
    }

    private bool RunStep()
    {
        lock (_lock)
        {
            for (int i = _active.Count - 1; i >= 0; i--)
                if (_active[i].CancelRequested) Finish(_active[i], StopReason.Cancelled);
            for (var node = _waiting.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.CancelRequested) { _waiting.Remove(node); node.Value.Complete(StopReason.Cancelled); }
                node = next;
            }
            Admit();
            if (_active.Count == 0) return false;
        }
        while (true)
        {
            BuildBatch();
            try
            {
                _model.ForwardBatchInto(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_inputs), _logits);
                break;
            }
            catch (CacheFullException)
            {
                // The pool cannot grow every sequence this step (nothing was changed): set the newest aside, or end
                // the only one if even it alone does not fit.
                lock (_lock)
                {
                    if (_active.Count > 1) Preempt(_active[^1]);
                    else { Finish(_active[0], StopReason.ContextFull); return true; }
                }
            }
        }
        Steps++;
        int vocab = _model.Config.VocabSize;
        lock (_lock)
        {
            for (int i = 0; i < _inBatch.Count; i++)
            {
                var r = _inBatch[i];
                r.Processed += _inputs[i].InputIds.Length;
                if (r.Processed < r.TokenCount) continue; // more prompt to run
                var scratch = r.Options.TopLogprobs is null ? default : (_logprobScratch ??= new float[vocab]);
                int token = r.Sample(_logits.AsSpan(i * vocab, vocab), scratch);
                var reason = r.Emit(token, Cache.MaxTokensPerSequence);
                if (reason != StopReason.None) Finish(r, reason);
            }
        }
        return true;
    }

    /// <summary>Moves waiting requests into the batch while there is room, forking from a running sequence when they share a prefix.</summary>
    private void Admit()
    {
        while (_waiting.First is { } node && _active.Count < Options.MaxBatchSize)
        {
            var r = node.Value;
            if (r.Options.MaxNewTokens == 0)
            {
                _waiting.RemoveFirst();
                r.Complete(StopReason.MaxTokens);
                continue;
            }
            if (r.TokenCount > Cache.MaxTokensPerSequence || BlocksFor(r.TokenCount) > Cache.Pool.MaxBlocks)
            {
                _waiting.RemoveFirst();
                r.Complete(StopReason.ContextFull);
                continue;
            }
            // Wait for room rather than admit a request that would force a preemption at once.
            if (_active.Count > 0 && BlocksFor(r.TokenCount) > Cache.Pool.BlocksAvailable) break;
            var (source, shared, pending) = Options.SharePrefixes ? LongestSharedPrefix(r) : (null, 0, 0);
            // A running request is still computing a prompt prefix (a block or more) this one shares: wait for it
            // and fork it then, rather than compute and store the same keys twice.
            if (pending >= Cache.Pool.BlockSize && pending > shared) break;
            _waiting.RemoveFirst();
            if (Options.CachePrefixes)
            {
                // Cached blocks of earlier requests, unless a running one shares more. The last token always runs, for logits.
                var fromCache = Cache.Join(r.TokenMemory(0, r.TokenCount - 1).Span, out int cached);
                if (cached > 0 && cached >= shared)
                {
                    r.Start(fromCache, cached);
                    _active.Add(r);
                    continue;
                }
                Cache.Leave(fromCache);
            }
            r.Start(source is null ? Cache.Join() : Cache.Fork(source.Sequence!, shared), shared);
            _active.Add(r);
        }
    }

    private int BlocksFor(int tokens) => (tokens + Cache.Pool.BlockSize) / Cache.Pool.BlockSize;

    /// <summary>
    /// The running request whose cache holds the longest prefix of <paramref name="r"/>'s tokens (Source, Tokens), and
    /// the longest prefix any running request has or will have once its prompt has run (Pending).
    /// </summary>
    private (GenerationRequest? Source, int Tokens, int Pending) LongestSharedPrefix(GenerationRequest r)
    {
        GenerationRequest? best = null;
        int bestLength = 0, pending = 0;
        foreach (var a in _active)
        {
            // The request must still run one token of its own to get logits.
            int limit = Math.Min(a.TokenCount, r.TokenCount - 1), n = 0;
            while (n < limit && a.TokenAt(n) == r.TokenAt(n)) n++;
            pending = Math.Max(pending, n);
            int cached = Math.Min(n, a.Sequence!.Count); // only tokens already in the cache can be shared
            if (cached > bestLength) { best = a; bestLength = cached; }
        }
        return (best, bestLength, pending);
    }

    private void BuildBatch()
    {
        _inputs.Clear();
        _inBatch.Clear();
        int budget = Options.MaxPrefillTokensPerStep;
        lock (_lock)
            foreach (var r in _active)
            {
                int pending = r.TokenCount - r.Processed;
                if (pending > 1 && budget == 0) continue; // its prompt waits for the next step
                int take = pending == 1 ? 1 : Math.Min(pending, Math.Max(1, budget));
                if (pending > 1) budget -= take;
                _inputs.Add(new BatchInput(r.TokenMemory(r.Processed, take), r.Sequence));
                _inBatch.Add(r);
            }
    }

    /// <summary>
    /// Takes a request out of the batch and returns its blocks to the pool, first offering its full blocks to later
    /// requests when prefixes are cached (<paramref name="publish"/> false: a failed step may have left them half-written).
    /// </summary>
    private void Drop(GenerationRequest r, bool publish = true)
    {
        _active.Remove(r);
        if (r.Sequence is not { } s) return;
        if (publish && Options.CachePrefixes) Cache.Publish(s, r.TokenMemory(0, s.Count).Span);
        Cache.Leave(s);
    }

    private void Preempt(GenerationRequest r)
    {
        Drop(r);
        r.Suspend();
        _waiting.AddFirst(r);
    }

    private void Finish(GenerationRequest r, StopReason reason)
    {
        Drop(r);
        r.Complete(reason);
    }

    private void FailAll(Exception e)
    {
        lock (_lock)
        {
            foreach (var r in _active.ToArray())
            {
                Drop(r, publish: false);
                r.Fail(e);
            }
        }
    }

    internal void Wake() => _signal.Release();

    /// <summary>Stops the background thread and ends every request that has not finished as cancelled.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _signal.Release();
        _loop?.Join();
        lock (_lock)
        {
            foreach (var r in _active.ToArray()) Finish(r, StopReason.Cancelled);
            foreach (var r in _waiting) r.Complete(StopReason.Cancelled);
            _waiting.Clear();
        }
        // The semaphore is not disposed: a request's Cancel may still signal it, and it holds no OS handle.
    }
}
