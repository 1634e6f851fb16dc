using System.Diagnostics.Metrics;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Server.Http;

namespace Qwen2.Server.Engine;

/// <summary>
/// The model behind the endpoints: its pipeline (tokenizer, chat template, defaults) once loaded, the running
/// <see cref="BatchGenerator"/>, admission into its bounded queue, and the metrics.
/// </summary>
internal sealed class ServerEngine : IDisposable
{
    private volatile Qwen2Pipeline? _pipeline;
    private volatile BatchGenerator? _generator;
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
    public bool IsReady => _generator is not null;

    /// <summary>Unix seconds when the model became ready (/v1/models' created).</summary>
    public long Created { get; private set; }

    /// <summary>The model id clients name and responses carry.</summary>
    public string ModelId { get; private set; } = "";

    public Qwen2Pipeline Pipeline => _pipeline ?? throw Loading();

    public BatchGenerator ReadyGenerator => _generator ?? throw Loading();

    /// <summary>Most tokens one sequence holds: prompt and reply together.</summary>
    public int ContextSize => ReadyGenerator.Cache.MaxTokensPerSequence;

    /// <summary>Serves <paramref name="pipeline"/> from now on (once only).</summary>
    public void Attach(Qwen2Pipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var generator = new BatchGenerator(pipeline, Options.Batching);
        if (Interlocked.CompareExchange(ref _generator, generator, null) is not null)
        {
            generator.Dispose();
            throw new InvalidOperationException("the server already has a model");
        }
        _pipeline = pipeline;
        ModelId = Options.Alias is { Length: > 0 } alias ? alias : ModelName(pipeline.Model.Directory);
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        generator.Start();
    }

    /// <summary>
    /// Takes a place for a generation, or refuses with 503 and Retry-After when the batch and the queue are full.
    /// Dispose the result when the request ends.
    /// </summary>
    public Admission Admit()
    {
        var generator = ReadyGenerator;
        int limit = generator.Options.MaxBatchSize + Options.MaxQueuedRequests;
        if (Interlocked.Increment(ref _inFlight) > limit)
        {
            Interlocked.Decrement(ref _inFlight);
            throw new ApiException(503, "unavailable_error", $"the server is busy: {limit} requests are running or queued; retry later", retryAfterSeconds: Options.RetryAfterSeconds);
        }
        return new Admission(this);
    }

    private ApiException Loading() => new(503, "unavailable_error", "the model is loading", retryAfterSeconds: Options.RetryAfterSeconds);

    private static string ModelName(string path)
    {
        string trimmed = Path.TrimEndingDirectorySeparator(path);
        return File.Exists(trimmed) ? Path.GetFileNameWithoutExtension(trimmed) : Path.GetFileName(trimmed);
    }

    public void Dispose() => _generator?.Dispose();

    /// <summary>A place in the batch or its queue, given back on dispose.</summary>
    internal readonly struct Admission(ServerEngine engine) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref engine._inFlight);
    }
}
