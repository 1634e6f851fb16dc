// How to use Qwen2Managed's KV cache. Three sections, each runnable alone:
//
//   dotnet run --project examples/CacheUsage -c Release                      # all three, on a synthesized tiny checkpoint
//   dotnet run --project examples/CacheUsage -c Release -- basic             # Forward with past key values
//   dotnet run --project examples/CacheUsage -c Release -- generate DIR      # InferenceSession and ChatSession
//   dotnet run --project examples/CacheUsage -c Release -- compare --model DIR
//
// The checkpoint comes from the second argument, --model, or QWEN2_MODEL (a directory or a cached hub id such as
// Qwen/Qwen2.5-0.5B-Instruct). Without one, a tiny random-weight checkpoint is written to a temp directory: its text is
// gibberish, but every call below works the same on a real model. The exit code is 1 when the cached and uncached
// greedy tokens differ, so CI catches a cache regression.

using System.Diagnostics;
using System.Text;
using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Examples;
using Qwen2.Native.Text;

Console.OutputEncoding = Encoding.UTF8;

string section = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "all";
if (section is not ("all" or "basic" or "generate" or "compare"))
{
    Console.Error.WriteLine($"unknown section '{section}'; expected basic, generate, compare or all");
    return 2;
}

using var checkpoint = TinyCheckpoint.Open(ModelArgument(args), "qwen2-cache-usage");
string dir = checkpoint.Directory;
Console.WriteLine($"checkpoint: {checkpoint}");
// One model, shared by everything below: it is immutable after load. Caches and sessions are per sequence. The
// pipeline loads it with its tokenizer, chat template and generation_config.json defaults.
using var pipeline = Qwen2Pipeline.FromPretrained(dir);
var (model, tokenizer) = (pipeline.Model, pipeline.Tokenizer);

if (section is "all" or "basic") BasicCacheUse(model, tokenizer);
if (section is "all" or "generate") await TextGenerationAsync(pipeline);
if (section is "all" or "compare") return CompareWithoutCache(model, tokenizer) ? 0 : 1;
return 0;

// ---------------------------------------------------------------------------------------------------------------
// 1. The Hugging Face-style forward: (logits, past_key_values) = forward(input_ids, past_key_values, use_cache)
// ---------------------------------------------------------------------------------------------------------------
static void BasicCacheUse(Qwen2Model model, Qwen2Tokenizer tokenizer)
{
    Console.WriteLine();
    Console.WriteLine("== basic: Forward with past key values");
    int[] prompt = tokenizer.Encode("The KV cache keeps every token's keys and values");

    // No caches given and useCache: true, so Forward creates them (ModelOptions.DefaultCacheCapacity tokens) and returns them.
    var (logits, cache) = model.Forward(prompt, useCache: true, logits: LogitsSelection.Last);
    Console.WriteLine($"prompt of {prompt.Length} tokens: Position {cache!.Position}, Count {cache.Count}, Capacity {cache.Capacity}");

    // Each next call passes the cache back with only the new token; RoPE positions continue from cache.Position.
    for (int step = 0; step < 3; step++)
    {
        int next = logits.ArgMax(0);
        (logits, cache) = model.Forward([next], cache, useCache: true, logits: LogitsSelection.Last);
        Console.WriteLine($"  fed token {next,6}: Position {cache!.Position}, Count {cache.Count}");
    }

    // ForwardInto writes into your buffer and allocates nothing: the form for a hot decode loop.
    var buffer = new float[model.Config.VocabSize];
    model.ForwardInto([logits.ArgMax(0)], cache, buffer);
    Console.WriteLine($"ForwardInto appended one more: Position {cache.Position}");

    // A cache you size yourself. The default overflow is CacheOverflow.Throw: a call that does not fit throws
    // CacheFullException before anything changes, so the cache is still usable.
    var small = model.CreateCache(capacity: 8);
    model.Forward(prompt.AsSpan(0, 6), small, useCache: true);
    try
    {
        model.Forward(prompt.AsSpan(0, 6), small, useCache: true);
    }
    catch (CacheFullException e)
    {
        Console.WriteLine($"full cache: {e.Message}");
        Console.WriteLine($"  and it is unchanged: Position {small.Position}, Count {small.Count}");
    }

    // For an endless stream: a sliding window keeps the first SinkTokens tokens (attention sinks) and the most recent
    // ones. Position keeps counting past Capacity, so RoPE stays absolute.
    var window = model.CreateCache(capacity: 16, new CacheOptions(CacheOverflow.SlidingWindow, SinkTokens: 4));
    for (int i = 0; i < 5; i++) model.Forward(prompt.AsSpan(0, 8), window, useCache: true);
    Console.WriteLine($"sliding window after 40 tokens: Position {window.Position}, Count {window.Count}, Capacity {window.Capacity}");

    window.Rewind(2); // forget the 2 newest tokens, e.g. a rejected draft
    Console.WriteLine($"  after Rewind(2): Position {window.Position}, Count {window.Count}");
    window.Reset();   // forget everything; the memory stays allocated for the next sequence
    Console.WriteLine($"  after Reset():   Position {window.Position}, Count {window.Count}");
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Text generation: InferenceSession owns the cache; ChatSession reuses it across turns.
// ---------------------------------------------------------------------------------------------------------------
static async Task TextGenerationAsync(Qwen2Pipeline pipeline)
{
    var (model, tokenizer) = (pipeline.Model, pipeline.Tokenizer);
    Console.WriteLine();
    Console.WriteLine("== generate: InferenceSession, streaming text");
    var session = new InferenceSession(model, new SessionOptions { CacheCapacity = 1024 });
    var options = new GenerationOptions
    {
        // The same seed, prompt and options give the same text.
        Sampling = new SamplingOptions { Temperature = 0.7, TopK = 40, TopP = 0.9, Seed = 42 },
        MaxNewTokens = 24,
        StopStrings = ["\n\n"], // text generation stops before a blank line; the stop string is not returned
    };

    // A timeout as a safety net: when it fires, the cache holds exactly the tokens processed so far.
    using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
    {
        try
        {
            await foreach (string piece in session.GenerateTextAsync(tokenizer, "Once upon a time", options, timeout.Token))
                Console.Write(piece);
        }
        catch (OperationCanceledException)
        {
            Console.Write(" [timed out]");
        }
    }
    Console.WriteLine();
    Console.WriteLine($"  {session.LastStats}");
    // The last generated token is pending: it runs only if the sequence continues, so a stop costs no extra step.
    Console.WriteLine($"  tokens {session.Tokens.Count} = processed {session.ProcessedTokens} (in the cache: {session.Cache!.Count}) + pending {session.PendingTokens}");

    // Cancelling (here by hand, after 5 pieces) ends the stream; nothing half-done stays in the cache.
    using (var cts = new CancellationTokenSource())
    {
        int pieces = 0;
        try
        {
            await foreach (string piece in session.GenerateTextAsync(tokenizer, " And then", options with { StopStrings = [] }, cts.Token))
                if (++pieces == 5) cts.Cancel();
        }
        catch (OperationCanceledException)
        {
        }
        Console.WriteLine($"cancelled after {pieces} pieces: stop {session.LastStats!.StopReason}; cache holds {session.Cache.Count} = processed {session.ProcessedTokens}");
    }

    Console.WriteLine();
    Console.WriteLine("== generate: ChatSession, two turns over one cache");
    var chat = new ChatSession(pipeline, new ChatSessionOptions { Session = new SessionOptions { CacheCapacity = 2048 } });
    var reply = options with { MaxNewTokens = 16, StopStrings = [] };
    foreach (string message in new[] { "What is a KV cache?", "And why does it save time?" })
    {
        Console.Write($"user: {message}\nassistant: ");
        await foreach (string piece in chat.SendAsync(message, reply))
            Console.Write(piece);
        Console.WriteLine();
        // The second turn runs only its new tokens (the first reply's pending last token, the markup and the message),
        // not the conversation so far.
        Console.WriteLine($"  prompt tokens run: {chat.LastStats!.PromptTokens}; conversation: {chat.Session.Tokens.Count} tokens");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. With and without the cache: the same greedy tokens, very different cost.
// ---------------------------------------------------------------------------------------------------------------
static bool CompareWithoutCache(Qwen2Model model, Qwen2Tokenizer tokenizer)
{
    Console.WriteLine();
    Console.WriteLine("== compare: the same generation with and without the cache");
    int[] prompt = tokenizer.Encode("A transformer without a cache recomputes every earlier token at each step, so");
    var greedy = new GenerationOptions { MaxNewTokens = 24, IgnoreEos = true }; // IgnoreEos: a fixed length for both runs
    // A random-weight model's greedy choice mostly repeats its last token, so a seeded sampled run checks varied
    // tokens too: the same seed draws the same tokens when the logits agree.
    var sampled = greedy with { Sampling = new SamplingOptions { Temperature = 1.0, Seed = 7 } };

    (int[] Tokens, TimeSpan Time) Run(SessionOptions sessionOptions, GenerationOptions options)
    {
        var session = new InferenceSession(model, sessionOptions);
        var clock = Stopwatch.StartNew();
        int[] tokens = session.Generate(prompt, options).ToArray();
        return (tokens, clock.Elapsed);
    }

    Run(new SessionOptions(), greedy); // warm-up, so the first timed run is not charged for JIT compilation
    bool ok = true;
    int[] generated = [];
    foreach (var (name, options) in new[] { ("greedy", greedy), ("sampled, seed 7", sampled) })
    {
        var noCache = Run(new SessionOptions { UseCache = false }, options);
        var withCache = Run(new SessionOptions(), options);
        bool same = noCache.Tokens.AsSpan().SequenceEqual(withCache.Tokens);
        Console.WriteLine($"{name}:");
        Console.WriteLine($"  without cache: [{string.Join(", ", noCache.Tokens)}]  {noCache.Time.TotalMilliseconds:F1} ms");
        Console.WriteLine($"  with cache:    [{string.Join(", ", withCache.Tokens)}]  {withCache.Time.TotalMilliseconds:F1} ms");
        Console.WriteLine($"  same tokens: {same}");
        ok &= same;
        generated = withCache.Tokens;
    }

    // The last decode step's logits (one token in, the rest from the cache) against a full recompute of the sequence.
    int[] sequence = [.. prompt, .. generated];
    var cache = model.CreateCache(sequence.Length);
    var cached = new float[model.Config.VocabSize];
    var full = new float[model.Config.VocabSize];
    model.ForwardInto(prompt, cache, cached);
    foreach (int token in generated) model.ForwardInto([token], cache, cached);
    model.ForwardInto(sequence, null, full);
    float maxDiff = 0;
    for (int i = 0; i < full.Length; i++) maxDiff = MathF.Max(maxDiff, MathF.Abs(cached[i] - full[i]));
    Console.WriteLine($"max abs logit difference at position {sequence.Length - 1}, cached step vs full recompute: {maxDiff:G3}");

    // Both paths sum in the same order except inside attention, so they agree to float rounding (the tests hold 1e-4).
    if (!ok) Console.Error.WriteLine("FAIL: the tokens with and without the cache differ");
    if (maxDiff > 1e-3f) Console.Error.WriteLine($"FAIL: cached and recomputed logits differ by {maxDiff}");
    return ok && maxDiff <= 1e-3f;
}

// ---------------------------------------------------------------------------------------------------------------
// Plumbing: where the checkpoint comes from.
// ---------------------------------------------------------------------------------------------------------------
static string? ModelArgument(string[] args)
{
    int flag = Array.IndexOf(args, "--model");
    if (flag >= 0) return flag + 1 < args.Length ? args[flag + 1] : throw new ArgumentException("--model needs a directory or hub id");
    return args.Length > 1 && !args[1].StartsWith('-') ? args[1] : null;
}
