using System.Text;
using System.Text.Json;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>ToolCallParser on Qwen's tool-call output, cut into pieces at every position (tags split across tokens anywhere).</summary>
public class ToolCallParserTests
{
    // As Qwen2.5 writes two calls after a sentence (the layout its chat template teaches).
    private const string Recorded = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>\n" +
        "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";

    private static (string Text, List<ParsedToolCall> Calls) Run(IEnumerable<string> pieces)
    {
        int ids = 0;
        var parser = new ToolCallParser(() => $"id{ids++}");
        var text = new StringBuilder();
        var calls = new List<ParsedToolCall>();
        foreach (var piece in pieces)
        {
            var d = parser.Push(piece);
            Assert.DoesNotContain("<tool_call", d.Text, StringComparison.Ordinal);
            text.Append(d.Text);
            calls.AddRange(d.Calls);
        }
        var end = parser.Flush();
        text.Append(end.Text);
        calls.AddRange(end.Calls);
        return (text.ToString(), calls);
    }

    private static IEnumerable<string[]> EveryTwoCuts(string s)
    {
        for (int i = 0; i <= s.Length; i++)
            for (int j = i; j <= s.Length; j += 3)
                yield return [s[..i], s[i..j], s[j..]];
    }

    [Fact]
    public void TwoCallsAfterTextComeOutWholeAtEveryCut()
    {
        int cases = 0;
        foreach (var pieces in EveryTwoCuts(Recorded).Append(Recorded.Select(c => c.ToString()).ToArray()))
        {
            var (text, calls) = Run(pieces);
            Assert.Equal("Let me check.", text);
            Assert.Equal(2, calls.Count);
            Assert.Equal(new ToolCall("get_weather", "{\"city\": \"Paris\", \"days\": 2}", "id0"), calls[0].Call);
            Assert.Equal(new ToolCall("now", "{}", "id1"), calls[1].Call);
            Assert.All(calls, c => Assert.Null(c.Error));
            cases++;
        }
        Assert.True(cases > 2000, $"{cases} cuttings");
    }

    [Theory]
    [InlineData("Plain text with a <tool> tag, a < sign and <tool_ca without the rest.\n\n")]
    [InlineData("  leading and trailing space  ")]
    [InlineData("")]
    public void TextWithoutCallsComesOutUnchangedAtEveryCut(string plain)
    {
        foreach (var pieces in EveryTwoCuts(plain))
        {
            var (text, calls) = Run(pieces);
            Assert.Equal(plain, text);
            Assert.Empty(calls);
        }
    }

    [Fact]
    public void TextAfterACallIsKeptWithoutTheNewlinesThatSeparateIt()
    {
        var (text, calls) = Run(["<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>\n\nDone, see above."]);
        Assert.Equal("Done, see above.", text);
        Assert.Equal("{\"x\": [1, 2]}", Assert.Single(calls).Call!.Arguments);
    }

    [Theory]
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}\n</tool_call>", "not JSON")]
    [InlineData("<tool_call>\n{\"arguments\": {}}\n</tool_call>", "no \"name\"")]
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>", "not an object")]
    [InlineData("<tool_call>\n[\"f\"]\n</tool_call>", "not an object")]
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\"", "never closed")]
    public void MalformedCallsAreReportedWithTheirText(string output, string reason)
    {
        var (text, calls) = Run([output]);
        Assert.Equal("", text);
        var call = Assert.Single(calls);
        Assert.Null(call.Call);
        Assert.Contains(reason, call.Error);
        Assert.Equal(output, call.Raw);
    }

    [Fact]
    public void ArgumentsGivenAsAJsonStringAreAccepted()
    {
        var (_, calls) = Run(["<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}\n</tool_call>"]);
        Assert.Equal(1, JsonDocument.Parse(Assert.Single(calls).Call!.Arguments).RootElement.GetProperty("x").GetInt32());
    }
}
