using System.Diagnostics.Metrics;
using Qwen2.Native.Embeddings;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Server.Http;

namespace Qwen2.Server.Engine;

/// <summary>
/// The model behind the endpoints: its pipeline (tokenizer, chat template, defaults) once loaded, the running
/// <see cref="BatchGenerator"/> (none for an embedding model, which generates nothing and needs no KV pool), the
/// embedding generator, admission into the bounded queue, and the metrics.
/// </summary>
internal sealed class ServerEngine : IDisposable
{
    private volatile Qwen2Pipeline? _pipeline;
    private volatile BatchGenerator? _generator;
    private volatile Qwen2EmbeddingGenerator? _embedder;
    // One embedding request's forward calls at a time: each is already a batch over its inputs, and they share the
    // cores with the generator's steps.
    private readonly SemaphoreSlim _embedding = new(1, 1);
    private int _inFlight;

    public ServerEngine(Qwen2ServerOptions options, IMeterFactory meters)
    {
        options.Validate();
        Options = options;
        Metrics = new ServerMetrics(meters, this);
    }

    public Qwen2ServerOptions Options { get; }
    public ServerMetrics Metrics { get; }
    public BatchGenerator? Generator => _generator;
    public bool IsReady => _embedder is not null;

    /// <summary>Unix seconds when the model became ready (/v1/models' created).</summary>
    public long Created { get; private set; }

    /// <summary>The model id clients name and responses carry.</summary>
    public string ModelId { get; private set; } = "";

    public Qwen2Pipeline Pipeline => _pipeline ?? throw Loading();

    public BatchGenerator ReadyGenerator => _generator ?? throw (_embedder is null ? Loading() : EmbeddingOnly());

    /// <summary>The embeddings of the model (any model: an embedding model's, or a language model's last hidden state).</summary>
    public Qwen2EmbeddingGenerator Embedder => _embedder ?? throw Loading();

    /// <summary>Embeds one request's inputs (see <see cref="Qwen2EmbeddingGenerator.Embed"/>), after the embedding requests before it.</summary>
    public async Task<float[][]> EmbedAsync(int[][] inputs, int? dimensions, CancellationToken cancellationToken)
    {
        var embedder = Embedder;
        await _embedding.WaitAsync(cancellationToken);
        try
        {
            return await Task.Run(() => embedder.Embed(inputs, dimensions, cancellationToken), cancellationToken);
        }
        finally
        {
            _embedding.Release();
        }
    }

    /// <summary>Most tokens one sequence holds: prompt and reply together.</summary>
    public int ContextSize => ReadyGenerator.Cache.MaxTokensPerSequence;

    /// <summary>Serves <paramref name="pipeline"/> from now on (once only).</summary>
    public void Attach(Qwen2Pipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        if (Interlocked.CompareExchange(ref _pipeline, pipeline, null) is not null) throw new InvalidOperationException("the server already has a model");
        ModelId = Options.Alias is { Length: > 0 } alias ? alias : ModelName(pipeline.Model.Directory);
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (!pipeline.Model.IsEmbeddingModel)
        {
            var generator = new BatchGenerator(pipeline, Options.Batching);
            _generator = generator;
            generator.Start();
        }
        _embedder = new Qwen2EmbeddingGenerator(pipeline, modelId: ModelId); // last: it marks the engine ready
    }

    /// <summary>
    /// Takes a place for a generation, or refuses with 503 and Retry-After when the batch and the queue are full.
    /// Dispose the result when the request ends.
    /// </summary>
    public Admission Admit()
    {
        _ = Embedder; // 503 while loading
        int limit = Options.Batching.MaxBatchSize + Options.MaxQueuedRequests;
        if (Interlocked.Increment(ref _inFlight) > limit)
        {
            Interlocked.Decrement(ref _inFlight);
            throw new ApiException(503, "unavailable_error", $"the server is busy: {limit} requests are running or queued; retry later", retryAfterSeconds: Options.RetryAfterSeconds);
        }
        return new Admission(this);
    }

    private ApiException Loading() => new(503, "unavailable_error", "the model is loading", retryAfterSeconds: Options.RetryAfterSeconds);

    private ApiException EmbeddingOnly() =>
        ApiException.BadRequest($"{ModelId} is an embedding model (no lm_head): it serves /v1/embeddings, not completions", "model");

    private static string ModelName(string path)
    {
        string trimmed = Path.TrimEndingDirectorySeparator(path);
        return File.Exists(trimmed) ? Path.GetFileNameWithoutExtension(trimmed) : Path.GetFileName(trimmed);
    }

    public void Dispose()
    {
        _generator?.Dispose();
        _embedding.Dispose();
    }

    /// <summary>A place in the batch or its queue, given back on dispose.</summary>
    internal readonly struct Admission(ServerEngine engine) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref engine._inFlight);
    }
}
