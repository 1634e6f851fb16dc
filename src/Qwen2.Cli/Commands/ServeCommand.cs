using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Server;

namespace Qwen2.Cli;

/// <summary><c>qwen2 serve</c>: an OpenAI-compatible HTTP server over the continuous-batching generator.</summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var host = new Option<string>("--host") { Description = "IP address to bind (loopback unless told otherwise; 0.0.0.0 for every interface).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port; 0 picks a free one (the listening line names it).", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "Ask every request but GET /health for this key (Authorization: Bearer KEY). Default: $QWEN2_API_KEY, else no key." };
        var alias = new Option<string?>("--alias") { Description = "Model id that /v1/models lists and responses name (default: the model directory's name)." };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most requests decoding together (continuous batching).", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Most requests waiting for a place in the batch; more get 503 with Retry-After.", DefaultValueFactory = _ => 64 };
        var context = new Option<int?>("--context", "-c") { Description = "Most tokens per request, prompt and reply together (default: max_position_embeddings)." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: processor count)." };
        var cors = new Option<string?>("--cors-origin") { Description = "Let browser pages from this origin call the API (\"*\": any origin)." };
        var timeout = new Option<double?>("--timeout") { Description = "Seconds a generation may run before it is ended (default: no limit)." };
        var noPrefixCache = new Option<bool>("--no-prefix-cache") { Description = "Do not keep finished requests' KV blocks for later requests that begin the same way (automatic prefix caching is on by default)." };
        var quantize = CommonOptions.Quantize();
        var cmd = new Command("serve", "Serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize, /health, /metrics).")
        {
            model, host, port, apiKey, alias, maxBatch, maxQueue, context, threads, cors, timeout, noPrefixCache, quantize,
        };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            string dir = CommonOptions.ResolveModel(p.GetValue(model));
            int portValue = p.GetValue(port);
            if (portValue is < 0 or > 65535) throw new UsageException($"--port must be between 0 and 65535, got {portValue}");
            double? seconds = p.GetValue(timeout);
            if (seconds is <= 0) throw new UsageException($"--timeout must be positive, got {seconds}");
            var modelOptions = new ModelOptions
            {
                Threads = CommonOptions.AtLeast1(p.GetValue(threads), "--threads"),
                Quantize = CommonOptions.ParseQuantize(p.GetValue(quantize)),
            };
            int queue = p.GetValue(maxQueue);
            if (queue < 0) throw new UsageException($"--max-queue must be >= 0, got {queue}");
            var options = new Qwen2ServerOptions
            {
                Alias = p.GetValue(alias),
                ApiKey = p.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("QWEN2_API_KEY"),
                CorsOrigin = p.GetValue(cors),
                MaxQueuedRequests = queue,
                RequestTimeout = seconds is double s ? TimeSpan.FromSeconds(s) : null,
                Batching = new BatchGeneratorOptions
                {
                    MaxBatchSize = CommonOptions.AtLeast1(p.GetValue(maxBatch), "--max-batch"),
                    CachePrefixes = !p.GetValue(noPrefixCache),
                    Cache = new Qwen2.Native.BatchingKvCacheOptions { MaxTokensPerSequence = CommonOptions.AtLeast1(p.GetValue(context), "--context") },
                },
            };
            return Run(dir, modelOptions, options, p.GetValue(host)!, portValue, stdout, stderr);
        }));
        return cmd;
    }

    private static int Run(string dir, ModelOptions modelOptions, Qwen2ServerOptions options, string host, int port, TextWriter stdout, TextWriter stderr)
    {
        Qwen2Server server;
        try
        {
            server = Qwen2Server.Create(() => Load(dir, modelOptions), options, host, port);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--host: {e.Message.Split(" (Parameter")[0]}");
        }
        try
        {
            stderr.WriteLine($"loading {dir}");
            server.StartAsync().GetAwaiter().GetResult();
            // The line scripts and tests wait for: the model is loaded and requests are served from now on.
            stdout.WriteLine($"listening on {server.Address!.GetLeftPart(UriPartial.Authority)}");
            stdout.Flush();
            // The host's console lifetime turns SIGTERM and SIGINT into a graceful stop.
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            stderr.WriteLine("stopped");
            return 0;
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.GetType().Name == "AddressInUseException")
        {
            throw new UsageException($"cannot listen on {host}:{port}: {e.Message}");
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    // Qwen2Pipeline.FromPretrained owns the model (the server disposes the pipeline) and reads the tokenizer of a
    // directory or of a .gguf file's metadata.
    private static Qwen2Pipeline Load(string dir, ModelOptions modelOptions) => Qwen2Pipeline.FromPretrained(dir, modelOptions);
}
