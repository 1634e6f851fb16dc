// qwen2 serve's OpenAI-compatible API through clients this project did not write: the official OpenAI .NET SDK and
// Microsoft.Extensions.AI's IChatClient over it. The same code runs against vLLM, llama.cpp's llama-server or OpenAI.
//
//   dotnet run --project examples/Server -c Release                          # hosts a server in process (tiny checkpoint)
//   dotnet run --project examples/Server -c Release -- --model DIR           # ... on a real checkpoint (QWEN2_MODEL works too)
//   dotnet run --project examples/Server -c Release -- --url http://127.0.0.1:8080   # or talks to a running `qwen2 serve`
//
// The exit code is 1 when the streamed reply differs from the same request answered in one piece, so CI catches a
// streaming regression.

using System.ClientModel;
using System.Text;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;
using Qwen2.Examples;
using Qwen2.Native.Generation;
using Qwen2.Server;
using ChatMessage = OpenAI.Chat.ChatMessage;

Console.OutputEncoding = Encoding.UTF8;
string? Arg(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

Uri endpoint;
ExampleCheckpoint? checkpoint = null;
Qwen2Server? server = null;
if (Arg("--url") is { } url)
{
    endpoint = new Uri(url);
}
else
{
    // The server as a library: what `qwen2 serve --port 0` runs, hosted in this process on a free loopback port.
    checkpoint = TinyCheckpoint.Open(Arg("--model"), "qwen2-server");
    string dir = checkpoint.Directory;
    server = Qwen2Server.Create(() => Qwen2Pipeline.FromPretrained(dir), new Qwen2ServerOptions { Alias = "qwen2-example" }, "127.0.0.1", port: 0);
    await server.StartAsync();
    endpoint = server.Address!;
    Console.WriteLine($"checkpoint: {checkpoint}");
}
Console.WriteLine($"server: {endpoint}");

try
{
    // Any key works when the server was started without --api-key.
    var key = new ApiKeyCredential(Environment.GetEnvironmentVariable("QWEN2_API_KEY") ?? "no-key");
    var options = new OpenAIClientOptions { Endpoint = new Uri(endpoint, "/v1") };
    foreach (var m in (await new OpenAIModelClient(key, options).GetModelsAsync()).Value) Console.WriteLine($"model: {m.Id}");

    var chat = new ChatClient("qwen2-example", key, options); // the model name is what the server lists; it serves one
    List<ChatMessage> messages = [ChatMessage.CreateSystemMessage("You are brief."), ChatMessage.CreateUserMessage("What is a KV cache?")];
    var settings = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 32 };

    ChatCompletion whole = (await chat.CompleteChatAsync(messages, settings)).Value;
    string wholeText = whole.Content.Count > 0 ? whole.Content[0].Text : "";
    Console.WriteLine($"chat: {wholeText}");
    Console.WriteLine($"  finish_reason {whole.FinishReason}, {whole.Usage.InputTokenCount} prompt + {whole.Usage.OutputTokenCount} completion tokens");

    var streamed = new StringBuilder();
    Console.Write("stream: ");
    await foreach (var update in chat.CompleteChatStreamingAsync(messages, settings))
        foreach (var part in update.ContentUpdate)
        {
            streamed.Append(part.Text);
            Console.Write(part.Text);
        }
    Console.WriteLine();

    // Microsoft.Extensions.AI: the IChatClient abstraction apps code against, here over the OpenAI SDK and HTTP.
    IChatClient ai = chat.AsIChatClient();
    var reply = await ai.GetResponseAsync("Name three prime numbers.", new ChatOptions { Temperature = 0, MaxOutputTokens = 24 });
    Console.WriteLine($"IChatClient: {reply.Text}");

    if (streamed.ToString() != wholeText)
    {
        Console.Error.WriteLine("the streamed reply differs from the same request answered in one piece");
        return 1;
    }
    return 0;
}
finally
{
    if (server is not null) await server.DisposeAsync();
    checkpoint?.Dispose();
}
