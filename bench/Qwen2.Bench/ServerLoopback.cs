using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;

namespace Qwen2.Bench;

/// <summary>
/// qwen2 serve over loopback against the batch generator it runs on: one operation is <see cref="Streams"/>
/// concurrent requests of a fixed prompt and <see cref="Tokens"/> decoded tokens each (ignore_eos), streamed as
/// Server-Sent Events through HTTP (<see cref="Http"/> true) or read straight from the generator (false), so the
/// rows say what HTTP adds per token and how concurrent streams batch. The tokens/s column counts every stream.
/// </summary>
[Config(typeof(ServerLoopbackConfig))]
[WarmupCount(1), IterationCount(5)]
public class ServerLoopback
{
    private BenchServer _server = null!;
    private BatchGenerator _direct = null!;
    private int[] _prompt = null!;
    private string _body = null!;

    /// <summary>Decoded tokens per request.</summary>
    public const int Tokens = 64;

    /// <summary>Concurrent requests per operation.</summary>
    [Params(1, 8)]
    public int Streams { get; set; }

    /// <summary>Through the HTTP server, or straight from the generator.</summary>
    [Params(true, false)]
    public bool Http { get; set; }

    /// <summary>Loads the checkpoint and starts the server, and a generator of the same options to read directly.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var batching = new BatchGeneratorOptions { MaxBatchSize = 8, CachePrefixes = false };
        _server = BenchServer.Start(batching);
        _prompt = _server.Tokens(32, 0);
        _body = $"{{\"prompt\":[{string.Join(',', _prompt)}],\"max_tokens\":{Tokens},\"temperature\":0,\"ignore_eos\":true,\"stream\":true}}";
        _direct = new BatchGenerator(_server.Pipeline, batching);
        _direct.Start();
    }

    /// <summary>Stops the server and releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _direct.Dispose();
        _server.Dispose();
    }

    /// <summary>The streams, to their last token.</summary>
    [Benchmark]
    public Task<int> Run() => Task.WhenAll(Enumerable.Range(0, Streams).Select(_ => Http ? OverHttp() : Direct())).ContinueWith(t => t.Result.Sum());

    private async Task<int> OverHttp()
    {
        using var response = await _server.Http.PostAsync("/v1/completions", new StringContent(_body, Encoding.UTF8, "application/json"));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        int events = 0;
        while (await reader.ReadLineAsync() is { } line) if (line.StartsWith("data: ", StringComparison.Ordinal)) events++;
        return events;
    }

    private async Task<int> Direct()
    {
        var request = _direct.Submit(_prompt, new GenerationOptions { Sampling = SamplingOptions.Greedy, MaxNewTokens = Tokens, IgnoreEos = true });
        int n = 0;
        await foreach (var piece in request.ReadTextAsync()) n += piece.Length > 0 ? 1 : 0;
        return n;
    }
}

internal sealed class ServerLoopbackConfig : ManualConfig
{
    public ServerLoopbackConfig() => AddColumn(new StreamTokensPerSecondColumn());
}

/// <summary>Decoded tokens per second over all streams: Streams × Tokens / mean.</summary>
internal sealed class StreamTokensPerSecondColumn()
    : RateColumn("tokens/s", "Decoded tokens per second, all streams together (Streams x Tokens / mean)", 1, "F1")
{
    protected override double? AmountPerOperation(BenchmarkCase c) => c.Parameters["Streams"] is int streams ? streams * ServerLoopback.Tokens : null;
}
