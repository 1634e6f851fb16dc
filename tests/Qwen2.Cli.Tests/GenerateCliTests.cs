using System.Text.Json;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>The generate, chat, tokenize and demo verbs.</summary>
public class GenerateCliTests(TinyChatModel tiny) : IClassFixture<TinyChatModel>
{
    private static (int Code, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private static (int Code, string Out, string Err) RunWithInput(string stdin, params string[] args) => Cli.RunWithInput(stdin, args);

    private static int[] Ids(string json) => JsonSerializer.Deserialize<int[]>(json)!;

    [Theory]
    [InlineData("tiny-f32", false)]
    [InlineData("tiny-bf16", false)]
    [InlineData("untied-f16-mha", false)]
    [InlineData("headdim-bf16", true)]
    [InlineData("sliding-f32", false)]
    [InlineData("sharded-bf16", true)]
    public void GreedyIdsMatchTheReference(string name, bool noCache)
    {
        var golden = Fixtures.Golden(name);
        var args = new List<string> { "generate", "--model", Fixtures.Model(name), "--tokens", string.Join(",", golden.Tokens),
            "--temperature", "0", "--max-tokens", golden.Greedy.Length.ToString(), "--output", "ids", "--ignore-eos" };
        if (noCache) args.Add("--no-cache");
        var (code, output, err) = Run(args.ToArray());
        Assert.True(code == 0, err);
        Assert.Equal(golden.Greedy, Ids(output));
        Assert.Contains("tok/s", err);
    }

    [Fact]
    public void GenerationStopsAtTheConfigsEos()
    {
        // tiny-f32's config names 511 as eos; the reference's greedy run never produces it, so the output is unchanged.
        var golden = Fixtures.Golden("tiny-f32");
        var (code, output, err) = Run("generate", "-m", Fixtures.Model("tiny-f32"), "--tokens", string.Join(",", golden.Tokens), "-t", "0", "-n", "20", "-o", "ids");
        Assert.True(code == 0, err);
        Assert.Equal(golden.Greedy, Ids(output));
        Assert.Contains("stop: MaxTokens", err);
    }

    [Fact]
    public void TextGenerationStreamsAndIsRepeatableWithASeed()
    {
        string[] args = ["generate", "-m", tiny.Directory, "-p", "Write a haiku", "-n", "12", "--temperature", "0.9", "--top-k", "40", "--seed", "5", "--ignore-eos"];
        var a = Run(args);
        var b = Run(args);
        Assert.True(a.Code == 0, a.Err);
        Assert.Equal(a.Out, b.Out);
        Assert.Contains("generated 12 tokens", a.Err);
        var c = Run([.. args[..^3], "6", "--ignore-eos"]);
        Assert.NotEqual(a.Out, c.Out);
    }

    [Fact]
    public void JsonSchemaAndJsonConstrainTheOutputToJsonThatEndsWhenComplete()
    {
        using var dir = Fixtures.TempDir();
        string schema = Path.Combine(dir.Path, "schema.json");
        File.WriteAllText(schema, """{"type":"object","properties":{"city":{"type":"string","maxLength":12},"rank":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},"required":["city","rank","tags"]}""");
        foreach (var t in (string[])["0", "1.5"])
        {
            var (code, output, err) = Run("generate", "-m", tiny.Directory, "-p", "A city as JSON", "-n", "200", "-t", t, "-s", "3", "--json-schema", schema);
            Assert.True(code == 0, err);
            using var doc = JsonDocument.Parse(output);
            Assert.Equal(JsonValueKind.String, doc.RootElement.GetProperty("city").ValueKind);
            Assert.True(doc.RootElement.GetProperty("rank").TryGetInt64(out _));
            Assert.All(doc.RootElement.GetProperty("tags").EnumerateArray(), e => Assert.Contains(e.GetString(), new[] { "a", "b" }));
            Assert.Contains("stop: EndOfSequence", err);
        }
        // Ids in and out: the tokenizer is still loaded for the vocabulary the format is matched against.
        var ids = Run("generate", "-m", tiny.Directory, "--tokens", "5,6,7", "-n", "300", "-t", "1", "-s", "9", "--json", "-o", "ids");
        Assert.True(ids.Code == 0, ids.Err);
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(tiny.Tokenizer.Decode(Ids(ids.Out), skipSpecialTokens: true)).RootElement.ValueKind);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"when":{"type":"string","format":"date-time"}}}""", "#/properties/when/format")]
    [InlineData("""{"type":"string",""", "#")]
    public void ABadSchemaFileIsAUsageErrorNamingTheFileAndPath(string schemaText, string path)
    {
        using var dir = Fixtures.TempDir();
        string schema = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(schema, schemaText);
        var (code, output, err) = Run("generate", "-m", tiny.Directory, "-p", "x", "-n", "5", "--json-schema", schema);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: --json-schema {schema}: {path}: ", line);
        Assert.Equal(2, Run("generate", "-m", tiny.Directory, "-p", "x", "--json-schema", Path.Combine(dir.Path, "missing.json")).Code);
        Assert.Equal(2, Run("generate", "-m", tiny.Directory, "-p", "x", "--json", "--json-schema", schema).Code);
    }

    [Fact]
    public void RawAndTemplatedPromptsDiffer()
    {
        var raw = Run("generate", "-m", tiny.Directory, "-p", "Hello", "-n", "3", "-t", "0", "--raw", "-o", "ids", "--ignore-eos");
        var chat = Run("generate", "-m", tiny.Directory, "-p", "Hello", "-n", "3", "-t", "0", "-o", "ids", "--ignore-eos");
        Assert.True(raw.Code == 0 && chat.Code == 0, raw.Err + chat.Err);
        Assert.Contains("prompt 1 tokens", raw.Err); // "Hello" is one token
        Assert.Contains("prompt 30 tokens", chat.Err); // wrapped in the Qwen2.5 template with its default system prompt
    }

    [Fact]
    public void ChatRunsTurnsFromStdin()
    {
        var (code, output, err) = RunWithInput("hello\n/reset\nagain\n/exit\nnever read\n", "chat", "-m", tiny.Directory, "-n", "4", "-t", "0", "--ignore-eos");
        Assert.True(code == 0, err);
        Assert.Contains("(conversation reset)", err);
        Assert.Equal(2, err.Split('\n').Count(l => l.StartsWith("prompt ", StringComparison.Ordinal)));
        Assert.Equal(5, output.Split("> ").Length); // four prompts: two turns, /reset and /exit; the line after /exit is never read
    }

    [Fact]
    public void ChatNoThinkRendersTheEmptyThinkBlockAndHideReasoningKeepsStderrToTheStats()
    {
        using var qwen3 = new TinyQwen3Model();
        int block = qwen3.Pipeline.Tokenizer.Encode("<think>\n\n</think>\n\n").Length;
        int PromptTokens(params string[] extra)
        {
            var (code, _, err) = RunWithInput("hello\n", ["chat", "-m", qwen3.Directory, "-n", "3", "-t", "0", "--ignore-eos", "--hide-reasoning", .. extra]);
            Assert.True(code == 0, err);
            var stats = Assert.Single(err.Split('\n'), l => l.StartsWith("prompt ", StringComparison.Ordinal));
            return int.Parse(stats.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.Equal(PromptTokens() + block, PromptTokens("--no-think"));
    }

    [Fact]
    public void ChatShowsTheReasoningOnStderrAndTheAnswerOnStdout()
    {
        using var scripted = ScriptedModel.Reasoning(); // writes <think>Rayleigh scattering</think>\n\nBlue
        var (code, output, err) = RunWithInput("why?\n", ["chat", "-m", scripted.Directory, "-t", "0"]);
        Assert.True(code == 0, err);
        Assert.Contains("Blue", output);
        Assert.DoesNotContain("Rayleigh", output);
        Assert.DoesNotContain("think>", output);
        Assert.Contains("Rayleigh scattering", err);
        var hidden = RunWithInput("why?\n", ["chat", "-m", scripted.Directory, "-t", "0", "--hide-reasoning"]);
        Assert.Contains("Blue", hidden.Out);
        Assert.DoesNotContain("Rayleigh", hidden.Err + hidden.Out);
    }

    [Fact]
    public void TokenizeTakesTextOrAJsonFileAndNeedsOnlyTheTokenizer()
    {
        using var dir = Fixtures.TempDir();
        TinyChatModel.CopyTokenizer(dir.Path);
        string[] inputs = ["Hello, world!", "", "𝐇𝐞𝐥𝐥𝐨 𠮷 \r\n\t x", "<|im_start|>user\nhi<|im_end|>"];
        File.WriteAllText(dir.File("in.json"), JsonSerializer.Serialize(inputs));
        var (code, output, err) = Run("tokenize", "-m", dir.Path, "--json-in", dir.File("in.json"));
        Assert.True(code == 0, err);
        var rows = JsonSerializer.Deserialize<int[][]>(output)!;
        Assert.Equal(inputs.Select(s => tiny.Tokenizer.Encode(s)), rows);
        var one = Run("tokenize", "-m", dir.Path, "--text", "Hello, world!");
        Assert.Equal(rows[0], Ids(one.Out));
    }

    [Theory]
    [InlineData("--text", null, "--json-in", null, "either --text")]
    [InlineData("--json-in", "missing.json", null, null, "file not found")]
    [InlineData("--json-in", "bad.json", null, null, "expected a JSON array of strings")]
    public void TokenizeErrorsAreClear(string flag, string? value, string? flag2, string? value2, string message)
    {
        using var dir = Fixtures.TempDir();
        TinyChatModel.CopyTokenizer(dir.Path);
        File.WriteAllText(dir.File("bad.json"), "{\"a\": 1}");
        var args = new List<string> { "tokenize", "-m", dir.Path };
        if (value is null && flag2 is not null) args.AddRange([flag, "x", flag2, dir.File("bad.json")]);
        else args.AddRange([flag, value is null ? "x" : dir.File(value)]);
        if (value2 is not null) args.Add(value2);
        var (code, _, err) = Run(args.ToArray());
        Assert.Equal(Program.UsageError, code);
        Assert.Contains(message, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Theory]
    [InlineData(new[] { "generate", "-n", "2" }, "--prompt TEXT or --tokens IDS", true)]
    [InlineData(new[] { "generate", "-p", "x", "--tokens", "1" }, "either --prompt", true)]
    [InlineData(new[] { "generate", "-p", "x", "--temperature", "-1" }, "--temperature", true)]
    [InlineData(new[] { "generate", "-p", "x", "--top-p", "0" }, "--top-p", true)]
    [InlineData(new[] { "generate", "-p", "x", "--max-tokens", "-2" }, "--max-tokens", true)]
    [InlineData(new[] { "generate", "-p", "x", "--stop", "" }, "--stop", true)]
    [InlineData(new[] { "generate", "--tokens", "1,999999", "-o", "ids" }, "999999", true)]
    [InlineData(new[] { "generate", "--model", "/no/such/dir", "-p", "x" }, "not found", false)]
    [InlineData(new[] { "generate", "--model", "Nobody/NoSuchModel-0B", "-p", "x" }, "download", false)]
    public void GenerateErrorsAreClear(string[] args, string message, bool addModel)
    {
        var full = addModel ? args.Concat(["--model", tiny.Directory]).ToArray() : args;
        var (code, output, err) = Run(full);
        Assert.Equal(Program.UsageError, code);
        Assert.Contains(message, err);
        Assert.DoesNotContain("   at ", err);
        Assert.Equal("", output);
    }

    [Fact]
    public void TextNeedsTheTokenizerFilesAndSaysSo()
    {
        var (code, _, err) = Run("generate", "-m", Fixtures.Model("tiny-f32"), "-p", "hi");
        Assert.Equal(Program.UsageError, code);
        Assert.Contains("tokenizer.json", err);
    }

    [Fact]
    public void EveryVerbHasHelp()
    {
        foreach (var verb in new[] { "demo", "bench", "generate", "chat", "tokenize", "synth", "export-gguf", "cpu", "info", "logits" })
        {
            var (code, output, _) = Run(verb, "--help");
            Assert.Equal(0, code);
            Assert.Contains("Usage:", output);
            Assert.Contains(" " + verb + " [options]", output);
        }
    }

    [Fact]
    public void DemoPrintsTheCacheTable()
    {
        using var dir = Fixtures.TempDir();
        var (code, output, err) = Run("demo", "--shape", "tiny", "--steps", "3", "--prompt-tokens", "6", "--dir", dir.File("ckpt"));
        Assert.True(code == 0, err);
        Assert.Contains("| prefill (6 tokens) |", output);
        Assert.Contains("| decode step 1 (7 tokens in context) |", output);
        Assert.Contains("| decode step 2 (8 tokens in context) |", output);
        Assert.Contains("| 3 decode steps in total |", output);
        Assert.Contains("same greedy token with and without the cache at 3 of 3 steps", output);
        Assert.True(File.Exists(dir.File("ckpt/.complete")));
        var again = Run("demo", "--shape", "tiny", "--steps", "2", "--prompt-tokens", "4", "--dir", dir.File("ckpt"));
        Assert.Contains("reusing", again.Err);
    }
}
