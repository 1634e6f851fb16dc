// A two-turn conversation through Microsoft.Extensions.AI's IChatClient, the abstraction .NET apps code against:
// everything after the client is created would run unchanged on any other IChatClient.
//
//   dotnet run --project examples/ChatClient -c Release                 # a synthesized tiny checkpoint
//   dotnet run --project examples/ChatClient -c Release -- DIR|HUB_ID   # or a real one (also $QWEN2_MODEL)
//
// Without a model, a tiny random-weight checkpoint is written to a temp directory: its replies are gibberish, but
// streaming, usage and cache reuse work as on a real model. Exits 1 if the second turn reused nothing from the cache.

using System.Text;
using Microsoft.Extensions.AI;
using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Examples;
using Qwen2.Native.Text;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;

Console.OutputEncoding = Encoding.UTF8;

using var checkpoint = TinyCheckpoint.Open(args.Length > 0 ? args[0] : null, "qwen2-chat-client");
string dir = checkpoint.Directory;
using var pipeline = Qwen2Pipeline.FromPretrained(dir);
using IChatClient client = new Qwen2ChatClient(pipeline);
var about = client.GetService<ChatClientMetadata>()!;
Console.WriteLine($"{about.ProviderName}, model {about.DefaultModelId}{(checkpoint.Synthesized ? " (synthesized, random weights)" : "")}");

// Stateless like every IChatClient: each call gets the whole conversation. The client still reuses its KV cache
// for the part of the conversation it has already seen.
List<ChatMessage> history = [new(ChatRole.System, "You are a concise assistant.")];
var options = new ChatOptions { Temperature = 0.7f, TopP = 0.8f, TopK = 20, Seed = 42, MaxOutputTokens = 48 };
long? cachedOnSecondTurn = null;
foreach (string question in new[] { "What is a KV cache?", "Why does it make decoding faster?" })
{
    history.Add(new(ChatRole.User, question));
    Console.WriteLine($"\nuser: {question}");
    Console.Write("assistant: ");
    var updates = new List<ChatResponseUpdate>();
    await foreach (var update in client.GetStreamingResponseAsync(history, options))
    {
        Console.Write(update.Text);
        updates.Add(update);
    }
    var response = updates.ToChatResponse();
    history.AddMessages(response);
    var usage = response.Usage!;
    Console.WriteLine();
    Console.WriteLine($"  [{response.FinishReason}: {usage.InputTokenCount} prompt tokens, {usage.CachedInputTokenCount} of them from the cache; {usage.OutputTokenCount} generated]");
    cachedOnSecondTurn = usage.CachedInputTokenCount;
}
return cachedOnSecondTurn > 0 ? 0 : 1;
