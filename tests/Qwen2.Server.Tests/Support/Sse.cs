using System.Text.Json;

namespace Qwen2.Server.Tests;

/// <summary>Reads a Server-Sent Events body the way a client does: the data of each event, in order.</summary>
internal static class Sse
{
    public static async Task<List<string>> ReadAllAsync(HttpResponseMessage response)
    {
        var events = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            events.Add(line["data: ".Length..]);
        }
        return events;
    }

    public static JsonElement Parse(string data) => JsonDocument.Parse(data).RootElement;
}
