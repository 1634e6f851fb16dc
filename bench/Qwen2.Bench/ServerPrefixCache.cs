using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Qwen2.Native.Serving;

namespace Qwen2.Bench;

/// <summary>
/// Automatic prefix caching through qwen2 serve: the time to a first token (a completion of max_tokens 1) of a
/// request whose <see cref="SystemTokens"/>-token prefix no earlier request had (<see cref="Cold"/>, the baseline),
/// against one that shares that prefix with a finished request and differs only in its last
/// <see cref="QuestionTokens"/> tokens (<see cref="Warm"/>). Each run checks the server's cached_tokens, so a miss
/// cannot pass for a hit.
/// </summary>
[WarmupCount(1), IterationCount(5), InvocationCount(1)]
public class ServerPrefixCache
{
    /// <summary>Tokens of the shared prefix (a long system prompt).</summary>
    public const int SystemTokens = 1000;

    /// <summary>Tokens after it that differ between requests.</summary>
    public const int QuestionTokens = 16;

    private BenchServer _server = null!;
    private int[] _system = null!;
    private long _salt = 1;

    /// <summary>Starts the server with prefix caching on, as qwen2 serve runs, and leaves the shared prefix in its cache.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _server = BenchServer.Start(new BatchGeneratorOptions { MaxBatchSize = 8, CachePrefixes = true });
        _system = _server.Tokens(SystemTokens, 0);
        FirstToken([.. _system, .. _server.Tokens(QuestionTokens, -1)], expectCached: false).GetAwaiter().GetResult();
    }

    /// <summary>Stops the server.</summary>
    [GlobalCleanup]
    public void Cleanup() => _server.Dispose();

    /// <summary>A prefix never seen: all of it is computed.</summary>
    [Benchmark(Baseline = true)]
    public Task<int> Cold() => FirstToken([.. _server.Tokens(SystemTokens, ++_salt), .. _server.Tokens(QuestionTokens, -_salt)], expectCached: false);

    /// <summary>The cached prefix and a new question: only the question is computed.</summary>
    [Benchmark]
    public Task<int> Warm() => FirstToken([.. _system, .. _server.Tokens(QuestionTokens, ++_salt)], expectCached: true);

    private async Task<int> FirstToken(int[] prompt, bool expectCached)
    {
        string body = $"{{\"prompt\":[{string.Join(',', prompt)}],\"max_tokens\":1,\"temperature\":0,\"ignore_eos\":true}}";
        using var response = await _server.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        int cached = doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
        // The cache keeps whole 16-token blocks of the prefix.
        int least = SystemTokens / 16 * 16;
        if (expectCached ? cached < least : cached != 0)
            throw new InvalidOperationException($"the server reused {cached} cached prompt tokens; this run expects {(expectCached ? $"at least {least}" : "none")}");
        return cached;
    }
}
