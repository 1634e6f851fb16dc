using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using Qwen2.Native.Tests.Tokenizer;
using Qwen2.Native.Text;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Fuzz;

/// <summary>
/// Edited tokenizer.json and tokenizer_config.json through <see cref="Qwen2Tokenizer.FromStreams"/>: each is refused with a
/// <see cref="CheckpointException"/> or loads a tokenizer that encodes and decodes without throwing.
/// </summary>
public sealed class TokenizerFuzzTests(ITestOutputHelper output)
{
    private const string SourceName = "fuzz";
    private static readonly string JsonName = Path.Combine(SourceName, Qwen2Tokenizer.TokenizerJsonFile);
    private static readonly string ConfigName = Path.Combine(SourceName, Qwen2Tokenizer.TokenizerConfigFile);

    private static readonly string BaseJson = TinyTokenizerJson.Build(
        TinyTokenizerJson.AddedToken(262, "<|endoftext|>"),
        TinyTokenizerJson.AddedToken(263, "<|im_start|>"),
        TinyTokenizerJson.AddedToken(264, "<tool_call>", special: false)).ToJsonString();

    private const string BaseConfig = """
        {"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}", "eos_token": "<|endoftext|>",
         "pad_token": {"content": "<|endoftext|>"}, "bos_token": null, "unk_token": null, "model_max_length": 32768,
         "add_bos_token": false, "clean_up_tokenization_spaces": false, "tokenizer_class": "Qwen2Tokenizer"}
        """;

    /// <summary>Values to put in place of a node, valid and invalid alike.</summary>
    private static readonly string[] Values =
        ["0", "-1", "1", "255", "261", "262", "2147483647", "2147483648", "-2147483649", "1e400", "1.5", "true", "false", "null", "\"\"", "\" \"",
         "\"a b\"", "\"a b c\"", "\"\\ud800\"", "\"x\\udc00y\"", "\"Ġ\"", "\"NFC\"", "\"NFKC\"", "\"BPE\"", "\"ByteLevel\"", "[]", "[\"a\", \"b\"]",
         "[\"Ġ\", \"t\"]", "[1, 2]", "{}", "{\"type\": \"NFC\"}", "{\"type\": \"Split\"}", "{\"content\": \"x\"}", "{\"content\": 5}",
         "[{\"name\": \"default\", \"template\": \"x\"}]", "[{\"name\": 1}]"];

    /// <summary>One edit of a JSON document: replace (or, with <see cref="Remove"/>, delete) the node at <see cref="Node"/> in document order.</summary>
    private sealed record NodeEdit(int Node, string Value, bool Remove)
    {
        public override string ToString() => Remove ? $"remove#{Node}" : $"#{Node}={Value}";
    }

    private static readonly Gen<NodeEdit> NodeEdits =
        Gen.Select(Gen.Int[0, int.MaxValue], Gen.OneOf(Values), Gen.Int[0, 4].Select(x => x == 0), (n, v, r) => new NodeEdit(n, v, r));

    /// <summary>Every node below the root, in document order, with the container that holds it and its key or index.</summary>
    private static List<(JsonNode Parent, string? Key, int Index)> Nodes(JsonNode root)
    {
        var list = new List<(JsonNode, string?, int)>();
        void Walk(JsonNode n)
        {
            if (n is JsonObject o)
                foreach (var (k, v) in o.ToList())
                {
                    list.Add((o, k, -1));
                    if (v is not null) Walk(v);
                }
            else if (n is JsonArray a)
                for (int i = 0; i < a.Count; i++)
                {
                    list.Add((a, null, i));
                    if (a[i] is { } v) Walk(v);
                }
        }
        Walk(root);
        return list;
    }

    private static string ApplyNodeEdits(string json, NodeEdit[] edits)
    {
        var root = JsonNode.Parse(json)!;
        var values = new List<string>();
        foreach (var e in edits)
        {
            var nodes = Nodes(root);
            if (nodes.Count == 0) break;
            var (parent, key, index) = nodes[e.Node % nodes.Count];
            // JsonNode cannot hold every text (1e400, lone surrogates): a placeholder is replaced in the output
            string placeholder = $"@@{values.Count}@@";
            if (parent is JsonObject o)
            {
                if (e.Remove) o.Remove(key!);
                else o[key!] = placeholder;
            }
            else if (parent is JsonArray a)
            {
                if (e.Remove) a.RemoveAt(index);
                else a[index] = placeholder;
            }
            values.Add(e.Value);
        }
        string text = root.ToJsonString();
        for (int i = 0; i < values.Count; i++) text = text.Replace($"\"@@{i}@@\"", values[i], StringComparison.Ordinal);
        return text;
    }

    private sealed record TokenizerCase(int Kind, Fuzzer.ByteEdit[] Bytes, NodeEdit[] Nodes);

    private static readonly Gen<TokenizerCase> Cases =
        Gen.Select(Gen.Int[0, 9], Fuzzer.Edit.Array[1, 5], NodeEdits.Array[1, 3], (k, b, n) => new TokenizerCase(k, b, n));

    /// <summary>The bytes of tokenizer.json for a case: node edits (most), byte edits, or gzip variants.</summary>
    private static byte[] JsonBytes(TokenizerCase c)
    {
        var plain = Encoding.UTF8.GetBytes(BaseJson);
        return c.Kind switch
        {
            < 6 => Encoding.UTF8.GetBytes(ApplyNodeEdits(BaseJson, c.Nodes)),
            < 8 => Fuzzer.Apply(plain, c.Bytes),
            8 => Fuzzer.Apply(Gzip(plain), c.Bytes, from: 2), // a gzip stream with its magic kept and its body edited
            _ => Gzip(Encoding.UTF8.GetBytes(ApplyNodeEdits(BaseJson, c.Nodes))),
        };
    }

    private static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(data);
        return ms.ToArray();
    }

    private static Outcome LoadAndUse(byte[] json, byte[]? config)
    {
        Qwen2Tokenizer? tokenizer = null;
        var outcome = Fuzzer.Load(() =>
        {
            using var j = new MemoryStream(json);
            using var c = config is null ? null : new MemoryStream(config);
            tokenizer = Qwen2Tokenizer.FromStreams(j, c, SourceName);
        }, JsonName, ConfigName);
        if (tokenizer is null) return outcome;
        // what loads is usable: encoding and decoding a text with added tokens in it never throws, and round-trips bytes
        const string text = "the word <|endoftext|> Hello, wörld! <tool_call> 123\n";
        var ids = tokenizer.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
        Assert.Equal(text, tokenizer.Decode(ids));
        return outcome;
    }

    [Fact]
    public void EditedTokenizerJson_IsRefusedOrUsable()
    {
        var config = Encoding.UTF8.GetBytes(BaseConfig);
        var (rejected, accepted) = Fuzzer.Run(output, "tokenizer.json: edits", Cases, FuzzBudget.TokenizerJson, seed: 2718,
            c => LoadAndUse(JsonBytes(c), config),
            c => $"kind {c.Kind} bytes [{string.Join(", ", c.Bytes)}] nodes [{string.Join(", ", c.Nodes)}]");
        Assert.True(rejected > 0 && accepted > 0, $"{rejected} refused, {accepted} loaded");
    }

    private static readonly Gen<(bool Bytes, Fuzzer.ByteEdit[] ByteEdits, NodeEdit[] NodeEdits)> ConfigCases =
        Gen.Select(Gen.Int[0, 2].Select(x => x == 0), Fuzzer.Edit.Array[1, 5], NodeEdits.Array[1, 3], (b, e, n) => (b, e, n));

    [Fact]
    public void EditedTokenizerConfig_IsRefusedOrUsable()
    {
        var json = Encoding.UTF8.GetBytes(BaseJson);
        var (rejected, accepted) = Fuzzer.Run(output, "tokenizer_config.json: edits", ConfigCases, FuzzBudget.TokenizerConfig, seed: 1618,
            c => LoadAndUse(json, c.Bytes ? Fuzzer.Apply(Encoding.UTF8.GetBytes(BaseConfig), c.ByteEdits) : Encoding.UTF8.GetBytes(ApplyNodeEdits(BaseConfig, c.NodeEdits))),
            c => c.Bytes ? $"bytes [{string.Join(", ", c.ByteEdits)}]" : $"nodes [{string.Join(", ", c.NodeEdits)}] -> {ApplyNodeEdits(BaseConfig, c.NodeEdits)}");
        Assert.True(rejected > 0 && accepted > 0, $"{rejected} refused, {accepted} loaded");
    }

    [Fact]
    public void TheUneditedFilesLoad()
    {
        Assert.Equal(Outcome.Accepted, LoadAndUse(Encoding.UTF8.GetBytes(BaseJson), Encoding.UTF8.GetBytes(BaseConfig)));
        Assert.Equal(Outcome.Accepted, LoadAndUse(Gzip(Encoding.UTF8.GetBytes(BaseJson)), null));
    }
}
