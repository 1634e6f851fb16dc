using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// The reasoning split holds to what Qwen3's chat template makes of an assistant turn (reasoning_content =
/// text between the tags, strip('\n'); content = text after &lt;/think&gt;, lstrip('\n')), for every way the output
/// can arrive in pieces: each cut position, each pair of cut positions, and one character at a time.
/// </summary>
public class ReasoningSplitterTests
{
    public static TheoryData<string, bool, string, string> Outputs => new()
    {
        // output, starts in reasoning, expected reasoning, expected content
        { "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?", false, "The user greets me.", "Hello! How can I help?" },
        { "<think>\n\n</think>\n\nNo thinking here.", false, "", "No thinking here." },
        // The first closing tag ends the reasoning (a stream cannot wait for a later one; the template would split at the last).
        { "<think>\na\n\nb < c, and <thin is not a tag; </thinking> neither\n</think>\n\nx</think>y", false,
            "a\n\nb < c, and <thin is not a tag; </thinking> neither", "x</think>y" },
        { "Plain answer with <think> inside, no reasoning.", false, "", "Plain answer with <think> inside, no reasoning." },
        { "\n<think>\nleading newline\n</think>\n\nok", false, "leading newline", "ok" },
        { "thinking from an opened prompt\n</think>\n\nanswer", true, "thinking from an opened prompt", "answer" },
        { "<think>\ncut off by max_tokens, mid-thought\n", false, "cut off by max_tokens, mid-thought", "" },
        { "<think>\nends on a partial tag </th", false, "ends on a partial tag </th", "" },
        { "<thi", false, "", "<thi" },
        { "", false, "", "" },
        { "日本語の<think>は答え", false, "", "日本語の<think>は答え" },
        { "<think>\n考える 🤔\n</think>\n\n答え 🎉", false, "考える 🤔", "答え 🎉" },
    };

    [Theory, MemberData(nameof(Outputs))]
    public void Every_split_gives_the_templates_reasoning_and_content(string output, bool opened, string reasoning, string content)
    {
        Assert.Equal((reasoning, content), Run(opened, output));
        for (int i = 0; i <= output.Length; i++)
            Assert.Equal((reasoning, content), Run(opened, output[..i], output[i..]));
        for (int i = 0; i <= output.Length; i++)
            for (int j = i; j <= output.Length; j++)
                Assert.Equal((reasoning, content), Run(opened, output[..i], output[i..j], output[j..]));
        Assert.Equal((reasoning, content), Run(opened, output.Select(c => c.ToString()).ToArray()));
    }

    [Fact]
    public void Answer_text_streams_as_soon_as_it_is_certain_and_no_tag_leaks()
    {
        var s = new ReasoningSplitter();
        Assert.True(s.Push("<thi").IsEmpty);
        Assert.True(s.Push("nk>\nStep one").Reasoning == "Step one");
        var d = s.Push(".\n</th");
        Assert.Equal((".", ""), (d.Reasoning, d.Content));
        Assert.False(s.InAnswer);
        d = s.Push("ink>\n\nThe ans");
        Assert.Equal(("", "The ans"), (d.Reasoning, d.Content));
        Assert.True(s.InAnswer);
        d = s.Push("wer");
        Assert.Equal(("", "wer"), (d.Reasoning, d.Content));
        Assert.True(s.Flush().IsEmpty);
    }

    [Theory]
    [InlineData("<|im_start|>assistant\n", false)]
    [InlineData("<|im_start|>assistant\n<think>\n\n</think>\n\n", false)]
    [InlineData("<|im_start|>assistant\n<think>\n", true)]
    public void ForPrompt_opens_in_reasoning_only_after_an_open_tag(string prompt, bool opened) =>
        Assert.Equal(opened, ReasoningSplitter.ForPrompt(prompt).StartsInReasoning);

    private static (string Reasoning, string Content) Run(bool opened, params string[] pieces)
    {
        var s = new ReasoningSplitter(opened);
        string r = "", c = "";
        foreach (var p in pieces)
        {
            var d = s.Push(p);
            r += d.Reasoning;
            c += d.Content;
            Assert.DoesNotContain("<think>", d.Reasoning, StringComparison.Ordinal);
        }
        var f = s.Flush();
        return (r + f.Reasoning, c + f.Content);
    }
}
