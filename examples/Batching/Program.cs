// Continuous batching with Qwen2Managed: several chat requests decoded together, one token each per step, in one
// pass over the weights. Each request streams its own text; one is cancelled halfway; two share a system prompt,
// whose KV blocks the second borrows from the first (prefix sharing with copy-on-write).
//
//   dotnet run --project examples/Batching -c Release                # on a synthesized tiny checkpoint
//   dotnet run --project examples/Batching -c Release -- --model DIR # or a real one (QWEN2_MODEL works too)
//
// Without a model a tiny random-weight checkpoint is written to a temp directory: the text is gibberish, but every
// call works the same on a real model. The exit code is 1 when a request's tokens differ from the same request run
// alone, so CI catches a batching regression.

using System.Text;
using Qwen2.Examples;
using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

Console.OutputEncoding = Encoding.UTF8;
int at = Array.IndexOf(args, "--model");
using var checkpoint = TinyCheckpoint.Open(at >= 0 && at + 1 < args.Length ? args[at + 1] : null, "qwen2-batching");
string dir = checkpoint.Directory;
Console.WriteLine($"checkpoint: {checkpoint}");
using var pipeline = Qwen2Pipeline.FromPretrained(dir); // model, tokenizer, chat template, generation defaults
var (model, tokenizer, template) = (pipeline.Model, pipeline.Tokenizer, pipeline.ChatTemplate);

string[] questions =
[
    "What is a KV cache?",
    "Name three prime numbers.",
    "Write a haiku about memory bandwidth.",
    "Why batch decode steps together?",
];
// Seeded sampling, so each request's tokens can be checked against the same request run alone.
var options = questions.Select((_, i) => new GenerationOptions
{
    MaxNewTokens = 24, IgnoreEos = checkpoint.Synthesized, // random weights rarely say end-of-turn
    Sampling = new SamplingOptions { Temperature = 0.8, TopP = 0.9, Seed = (ulong)(100 + i) },
}).ToArray();
// Every prompt starts with the same rendered system prompt: the later requests fork the first one's blocks.
var prompts = questions.Select(q => tokenizer.Encode(template.Render([ChatMessage.User(q)]))).ToArray();

using var generator = new BatchGenerator(pipeline, new BatchGeneratorOptions { MaxBatchSize = 8 });
var requests = prompts.Select((p, i) => generator.Submit(p, options[i])).ToArray();
generator.Start(); // a background thread runs a step whenever requests are waiting or running

// Stream every request's text at once; cancel the third after eight tokens (the others are not disturbed).
var texts = new StringBuilder[requests.Length];
await Task.WhenAll(requests.Select(async (request, i) =>
{
    texts[i] = new StringBuilder();
    await foreach (string piece in request.ReadTextAsync())
    {
        texts[i].Append(piece);
        if (i == 2 && request.Generated.Count >= 8) request.Cancel(); // takes effect at the next step
    }
}));

bool same = true;
for (int i = 0; i < requests.Length; i++)
{
    var stats = await requests[i].Completion;
    Console.WriteLine();
    Console.WriteLine($"== request {i}: \"{questions[i]}\" ({stats.PromptTokens} prompt tokens, {requests[i].SharedPromptTokens} shared with an earlier request)");
    Console.WriteLine(texts[i].ToString().Trim());
    Console.WriteLine($"   {stats.GeneratedTokens} tokens, stop: {stats.StopReason}");

    // The same request alone through an InferenceSession: batching must not change a single token.
    var alone = new InferenceSession(model).Generate(prompts[i], options[i]).Take(requests[i].Generated.Count).ToArray();
    if (!alone.SequenceEqual(requests[i].Generated))
    {
        Console.Error.WriteLine($"request {i}: batched tokens differ from the request run alone");
        same = false;
    }
}
var pool = generator.Cache.Pool;
Console.WriteLine();
Console.WriteLine($"{generator.Steps} batched steps; KV pool: {pool.BlocksAllocated} blocks of {pool.BlockSize} tokens allocated ({pool.BytesAllocated / 1024.0:F0} KiB), {pool.BlocksInUse} in use now");
return same ? 0 : 1;
