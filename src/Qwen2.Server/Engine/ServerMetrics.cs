using System.Diagnostics.Metrics;

namespace Qwen2.Server.Engine;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics), which /metrics exports in Prometheus text through
/// OpenTelemetry; names follow vLLM's and llama.cpp's metrics.
/// </summary>
internal sealed class ServerMetrics
{
    public const string MeterName = "Qwen2.Server";

    public ServerMetrics(IMeterFactory factory, ServerEngine engine)
    {
        var meter = factory.Create(MeterName);
        meter.CreateObservableGauge("qwen2_requests_processing", () => engine.Generator?.ActiveCount ?? 0, "{request}", "Requests in the running batch.");
        meter.CreateObservableGauge("qwen2_requests_waiting", () => engine.Generator?.WaitingCount ?? 0, "{request}", "Requests waiting for a place in the batch.");
        meter.CreateObservableGauge("qwen2_kv_blocks_in_use", () => engine.Generator?.Cache.Pool.BlocksInUse ?? 0, "{block}", "KV cache blocks held by sequences.");
        meter.CreateObservableGauge("qwen2_kv_blocks_total", () => engine.Generator?.Cache.Pool.MaxBlocks ?? 0, "{block}", "KV cache blocks the pool may hold.");
        PromptTokens = meter.CreateCounter<long>("qwen2_prompt_tokens", "{token}", "Prompt tokens of requests that ran.");
        CachedPromptTokens = meter.CreateCounter<long>("qwen2_prompt_tokens_cached", "{token}", "Prompt tokens taken from the KV cache instead of computed.");
        GeneratedTokens = meter.CreateCounter<long>("qwen2_generation_tokens", "{token}", "Tokens generated.");
        Requests = meter.CreateCounter<long>("qwen2_requests", "{request}", "Requests ended, by finish reason.");
        TimeToFirstToken = meter.CreateHistogram<double>("qwen2_time_to_first_token", "s", "From a request's submission to its first token.");
        TimePerOutputToken = meter.CreateHistogram<double>("qwen2_time_per_output_token", "s", "Between consecutive tokens of a request.");
    }

    public Counter<long> PromptTokens { get; }
    public Counter<long> CachedPromptTokens { get; }
    public Counter<long> GeneratedTokens { get; }
    public Counter<long> Requests { get; }
    public Histogram<double> TimeToFirstToken { get; }
    public Histogram<double> TimePerOutputToken { get; }

    /// <summary>Bucket bounds in seconds for the latency histograms.</summary>
    public static double[] LatencyBuckets { get; } = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60];
}
