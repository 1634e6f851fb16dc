using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;
using Qwen2.Server;

namespace Qwen2.Bench;

/// <summary>
/// The bench checkpoint (<see cref="BenchCheckpoint"/>) behind <c>qwen2 serve</c> on a loopback port, with a client:
/// what the server benchmarks share. A synthetic checkpoint gets the Qwen2.5 tokenizer.
/// </summary>
internal sealed class BenchServer : IDisposable
{
    private BenchServer(Qwen2Pipeline pipeline, Qwen2Server server)
    {
        Pipeline = pipeline;
        Server = server;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(10) };
        Vocab = Math.Min(pipeline.Model.Config.VocabSize, pipeline.Tokenizer.VocabSize);
    }

    public Qwen2Pipeline Pipeline { get; }
    public Qwen2Server Server { get; }
    public HttpClient Http { get; }

    /// <summary>Ids every part of the stack (model and tokenizer) knows.</summary>
    public int Vocab { get; }

    public static BenchServer Start(BatchGeneratorOptions batching)
    {
        string dir = BenchCheckpoint.Resolve();
        var model = Qwen2Model.Load(dir);
        var tokenizer = File.Exists(Path.Combine(dir, Qwen2Tokenizer.TokenizerJsonFile)) ? Qwen2Tokenizer.Load(dir) : BenchTokenizer.Qwen25();
        var pipeline = new Qwen2Pipeline(model, tokenizer);
        var server = Qwen2Server.Create(pipeline, new Qwen2ServerOptions { Batching = batching }, "127.0.0.1", 0);
        server.StartAsync().GetAwaiter().GetResult();
        return new BenchServer(pipeline, server);
    }

    /// <summary><paramref name="count"/> ids spread over the vocabulary by a multiplicative hash of the position and <paramref name="salt"/>.</summary>
    public int[] Tokens(int count, long salt) =>
        Enumerable.Range(0, count).Select(t => (int)((ulong)((t + 1) * 2654435761L + salt * 40503L + 17) % (ulong)Vocab)).ToArray();

    public void Dispose()
    {
        Http.Dispose();
        Server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Pipeline.Model.Dispose();
    }
}
